"""Report tables written out: JSON for the API, CSV for downloads.

Both write the same values: money as decimal strings, rates as fractions.
CSV cells that a spreadsheet would run as a formula are neutralised.
"""
from __future__ import annotations

import csv
import io
import itertools
import re
from typing import Any, Iterable, Iterator

from flask import Response, stream_with_context

from ..schemas import api_value
from .audience import AudienceMember
from .tables import CAMPAIGN_LIST_COLUMNS, Column, Table, campaign_list_row

#: A cell starting with one of these is a formula to Excel, LibreOffice and
#: Google Sheets; a leading apostrophe makes it text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


cell = api_value


def csv_download(body: str | Iterator[str], filename: str) -> Response:
    """A CSV file download: ``body`` is the text, or its lines (streamed, in
    the request's context). Private: reports are nobody else's to cache."""
    if not isinstance(body, str):
        body = stream_with_context(body)
    return Response(
        body,
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}.csv"',
            "Cache-Control": "private, no-store",
        },
    )


def table_json(table: Table) -> dict[str, Any]:
    return {
        "name": table.name,
        "title": table.title,
        "columns": [{"key": c.key, "label": c.label, "kind": c.kind} for c in table.columns],
        "rows": [{c.key: cell(row.get(c.key), c.kind) for c in table.columns} for row in table.rows],
        "notes": table.notes,
    }


#: A phone number in E.164 starts with ``+`` but computes nothing: kept as is.
_E164 = re.compile(r"\+[0-9]{6,15}")


def safe_csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _E164.fullmatch(value):
        return "'" + value
    return value


def _csv_row(row: dict[str, Any], columns: list[Column]) -> list[Any]:
    return [
        "" if (v := cell(row.get(c.key), c.kind)) is None else safe_csv_cell(v if c.kind != "text" else str(v))
        for c in columns
    ]


def table_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.key for c in table.columns])
    for row in table.rows:
        writer.writerow(_csv_row(row, table.columns))
    return out.getvalue()


def rows_csv(columns: list[Column], rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Table rows as CSV, one line at a time, written as :func:`table_csv`
    writes them: for tables too long to hold (a streamed download)."""
    return _csv_lines([c.key for c in columns], (_csv_row(row, columns) for row in rows), safe=False)


def campaign_list_csv(rows: Iterable[Any]) -> Iterator[str]:
    """The campaign list's rows (:class:`~.listing.ListRow`) as CSV lines."""
    return rows_csv(CAMPAIGN_LIST_COLUMNS, (campaign_list_row(r.campaign, r.report, r.date) for r in rows))


def _csv_lines(header: list[str], rows: Iterable[Iterable[Any]], *, safe: bool = True) -> Iterator[str]:
    """CSV text, one line at a time (for streamed downloads). ``safe=False``
    writes cells exactly, for files read by programs, not spreadsheets."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    cell_of = safe_csv_cell if safe else (lambda v: v)
    for row in itertools.chain([header], rows):
        writer.writerow(["" if v is None else cell_of(v) for v in row])
        yield out.getvalue()
        out.seek(0)
        out.truncate()


def messages_csv(rows: Iterable[tuple[str, str, str]]) -> Iterator[str]:
    """Rendered messages as ``phone,message,variant`` CSV lines, exactly as
    they are sent: the file is for SMS platforms, and a message that starts
    with ``-`` or ``=`` must not gain an apostrophe."""
    return _csv_lines(["phone", "message", "variant"], rows, safe=False)


def audience_csv(members: list[AudienceMember]) -> Iterator[str]:
    """An audience as CSV that ``import-recipients`` reads back: the phone,
    the external id and the attributes, then what the recipient did."""
    names = sorted({name for m in members for name in m.attributes})
    header = ["phone", "external_id", *names, "variant", "device", "country", "clicked_at", "converted"]
    return _csv_lines(
        header,
        (
            [
                m.phone, m.external_id, *(m.attributes.get(n) for n in names), m.variant, m.device, m.country,
                m.clicked_at.isoformat() if m.clicked_at else None, "yes" if m.converted else "no",
            ]
            for m in members
        ),
    )


def audience_json(member: AudienceMember) -> dict[str, Any]:
    return {
        "phone": member.phone,
        "external_id": member.external_id,
        "attributes": member.attributes,
        "variant": member.variant or None,
        "device": member.device,
        "country": member.country,
        "clicked_at": member.clicked_at.isoformat() if member.clicked_at else None,
        "converted": member.converted,
    }
