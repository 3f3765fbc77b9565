"""The "Best time to send" panel of the campaign form: the recommendation
and a bar per local hour of sending with its interval, drawn as inline SVG
(see ``templates/smstrack/_best_time.html``)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from ...reports.timing import BestTime, best_time
from ...schemas import api_value
from .base import bp, dashboard_principal
from .charts import _nice_max, _tick

#: Width of one hour's slot in the SVG's units (24 slots), height 100.
SLOT = 10


def best_time_chart(found: BestTime) -> dict[str, Any]:
    """The panel's text and the geometry of its bars: pure, from the report."""
    rows = [row for row in found.rows() if row["messages"]]
    top = _nice_max(max((row["ctr_high"] for row in rows), default=Decimal(0)), whole=False)

    def y(rate: Decimal) -> str:
        return str((100 - rate * 100 / top).quantize(Decimal("0.01")))

    bars = [
        {
            **row, "x": row["hour"] * SLOT + 2, "width": SLOT - 4, "middle": row["hour"] * SLOT + SLOT // 2,
            "y": y(row["ctr"]), "height": str((row["ctr"] * 100 / top).quantize(Decimal("0.01"))),
            "y_low": y(row["ctr_low"]), "y_high": y(row["ctr_high"]),
            # The numbers as the API and CSV write them.
            "api": {key: api_value(row[key], "rate") for key in ("ctr", "ctr_low", "ctr_high")},
        }
        for row in rows
    ]
    quiet = [hour.hour * SLOT for hour in found.hours if hour.quiet]
    return {
        "found": found, "summary": found.summary(), "bars": bars, "quiet": quiet, "width": 24 * SLOT,
        "top": f"{_tick(top * 100)}%", "middle": f"{_tick(top * 50)}%",
    }


@bp.context_processor
def _best_time_panel() -> dict[str, Any]:
    """``smstrack_best_time()`` for the panel: read only when a page shows it."""

    def panel() -> dict[str, Any]:
        return best_time_chart(best_time(dashboard_principal().owner_id))

    return {"smstrack_best_time": panel}
