"""Report tables written out: JSON for the API, CSV for downloads.

Both write the same values: money as decimal strings, rates as fractions.
CSV cells that a spreadsheet would run as a formula are neutralised.
"""
from __future__ import annotations

import csv
import io
from typing import Any

from .reports import Table
from .schemas import api_value
#: A cell starting with one of these is a formula to Excel, LibreOffice and
#: Google Sheets; a leading apostrophe makes it text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


cell = api_value


def table_json(table: Table) -> dict[str, Any]:
    return {
        "name": table.name,
        "title": table.title,
        "columns": [{"key": c.key, "label": c.label, "kind": c.kind} for c in table.columns],
        "rows": [{c.key: cell(row.get(c.key), c.kind) for c in table.columns} for row in table.rows],
    }


def safe_csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def table_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.key for c in table.columns])
    for row in table.rows:
        writer.writerow(
            [
                "" if (v := cell(row.get(c.key), c.kind)) is None else safe_csv_cell(v if c.kind != "text" else str(v))
                for c in table.columns
            ]
        )
    return out.getvalue()
