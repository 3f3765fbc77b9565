"""Chart geometry for the campaign page: the time series, heatmaps,
breakdown bars and delay histograms, drawn as inline SVG by the templates.
Pure functions of report tables: no queries, no requests."""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pycountry

from ...reports.formatting import plural
from ...reports.tables import (
    Table,
)
from ...schemas import (
    format_money,
)


def _decimal_pct(num: Decimal | int, den: Decimal | int) -> str:
    """``num / den`` as a CSS percentage (geometry only, never shown as a number)."""
    if not den:
        return "0"
    return str((Decimal(num) * 100 / Decimal(den)).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


def _nice_max(value: Decimal, *, whole: bool) -> Decimal:
    """The smallest round number (1, 2, 2.5 or 5 x 10^n; whole when asked)
    at or above ``value``: the top of a chart's scale."""
    if value <= 0:
        return Decimal(1)
    base = Decimal(1).scaleb(value.adjusted())
    for m in (1, 2, Decimal("2.5"), 5, 10):
        candidate = base * m
        if candidate >= value and (not whole or candidate == candidate.to_integral_value()):
            return candidate
    return base * 10  # pragma: no cover


def _tick(value: Decimal) -> str:
    value = value.normalize()
    if value == value.to_integral_value():
        return f"{value.quantize(Decimal(1)):,}"
    return f"{value:,f}"


def _when(start: dt.datetime, hours: int) -> str:
    day = f"{start:%a} {start.day} {start:%b}"
    if hours == 1:
        end = start + dt.timedelta(hours=1)
        return f"{day}, {start:%H:%M}–{end:%H:%M}"
    if start.hour == 0 and start.minute == 0:
        return day
    return f"{day}, from {start:%H:%M} ({hours} h)"


def chart(series: Table, currency: str) -> dict[str, Any] | None:
    """Three bar charts sharing one time axis, one bar per bucket of the
    time series: hours first, then days (the ``hours`` column)."""
    rows = series.rows
    if not rows:
        return None
    n = len(rows)
    # At least a day wide, so that a few hours of clicks are not a few giant bars.
    slots = max(n, 24)
    starts = [dt.datetime.fromisoformat(r["start"]) for r in rows]
    whens = [_when(start, r["hours"]) for start, r in zip(starts, rows)]
    tips = [
        f"{when}: {plural(r['clicks'], 'click')} ({r['unique_clicks']:,} unique),"
        f" {plural(r['conversions'], 'conversion')}, {format_money(r['revenue'])} {currency}"
        for when, r in zip(whens, rows)
    ]
    panels = []
    for key, label, money in (
        ("clicks", "Clicks", False),
        ("conversions", "Conversions", False),
        ("revenue", f"Revenue ({currency})", True),
    ):
        values = [Decimal(r[key]) for r in rows]
        top = _nice_max(max(values), whole=not money)
        ticks = [Decimal(0), top / 2, top]
        if not money and top / 2 != (top / 2).to_integral_value():
            ticks = [Decimal(0), top]
        bars = []
        for i, v in enumerate(values):
            height = Decimal(_decimal_pct(v, top))
            if v > 0 and height < 1:
                height = Decimal(1)  # a sliver stays visible
            bars.append({"x": i, "height": str(height), "y": str(100 - height)})
        panels.append(
            {
                "key": key,
                "label": label,
                "bars": bars,
                "ticks": [{"label": _tick(t), "pct": _decimal_pct(t, top)} for t in ticks],
                "gridlines": [str(100 - Decimal(_decimal_pct(t, top))) for t in ticks[1:]],
            }
        )
    # Time axis: about six labels, each bucket named by its local start; the
    # first day-long bucket and the last bucket are always named.
    daily_from = next((i for i, r in enumerate(rows) if r["hours"] != 1), None)
    step = max(1, -(-slots // 6))
    fixed = {0} | ({daily_from} if daily_from else set())
    if n - 1 >= step and all((n - 1 - f) * 2 >= step for f in fixed):
        fixed.add(n - 1)
    picked = sorted(fixed | {i for i in range(0, n, step) if all(abs(i - f) * 2 >= step for f in fixed - {0})})
    # A phone has room for half of them: keep those farthest apart.
    roomy = [0, *([daily_from] if daily_from else [])]
    for i in sorted(picked, key=lambda i: (i != n - 1, i)):
        if all(abs(i - j) >= step * 3 // 2 for j in roomy):
            roomy.append(i)
    labels = []
    for i in picked:
        start, hours = starts[i], rows[i]["hours"]
        last = i == n - 1 and i != 0
        labels.append(
            {
                "left": _decimal_pct(i + 1 if last else i, n),
                "line1": f"{start.day} {start:%b}",
                "line2": f"{start:%H:%M}" if hours == 1 else "",
                "cls": " ".join(
                    c for c, on in (("st-tick-last", last), ("st-tick-minor", i not in roomy)) if on
                ),
            }
        )
    return {
        "slots": slots,
        "width": _decimal_pct(n, slots),
        "panels": panels,
        "labels": labels,
        "daily_from": daily_from or None,
        "rows": [{**r, "when": when, "tip": tip} for when, tip, r in zip(whens, tips, rows)],
    }


def heatmap(table: Table, noun: str) -> dict[str, Any]:
    hours = [c.key for c in table.columns[1:]]
    top = max((row[h] for row in table.rows for h in hours), default=0)
    grid = []
    for row in table.rows:
        cells = []
        for h in hours:
            v = row[h]
            # Colour strength: 0.15 for the quietest hour with activity, 1 for the busiest.
            alpha = (Decimal("0.15") + Decimal("0.85") * v / top).quantize(Decimal("0.01")) if v else None
            tip = f"{row['weekday']} {h[1:]}:00–{h[1:]}:59: {v:,} {noun if v != 1 else noun.rstrip('s')}"
            cells.append({"value": v, "alpha": alpha, "tip": tip})
        grid.append({"weekday": row["weekday"], "cells": cells})
    return {"table": table, "grid": grid, "hours": [h[1:] for h in hours], "top": top, "empty": top == 0}


def _label(table: Table, value: str) -> tuple[str, str | None]:
    """A breakdown value as shown, and a hint beside it."""
    if table.name == "countries" and len(value) == 2:
        country = pycountry.countries.get(alpha_2=value)
        return value, country.name if country else None
    if table.name == "devices":
        return value.capitalize() if value != "(unknown)" else value, None
    if table.name == "variants" and value != "(unknown)":
        return f"Variant {value}", None
    return value, None


def breakdown(table: Table) -> dict[str, Any]:
    rows = []
    for row in table.rows:
        text, hint = _label(table, row["value"])
        rows.append({**row, "label": text, "hint": hint, "bar": _decimal_pct(row["share"] or 0, 1)})
    known = any(row["value"] != "(unknown)" for row in table.rows)
    return {"table": table, "rows": rows, "known": known}


def delays(table: Table) -> dict[str, Any]:
    top = max((row["count"] for row in table.rows), default=0)
    rows = [{**row, "bar": _decimal_pct(row["count"], top)} for row in table.rows]
    # Only the bins from the first to the last with a count.
    used = [i for i, row in enumerate(rows) if row["count"]]
    if used:
        rows = rows[used[0] : used[-1] + 1]
    return {"table": table, "rows": rows, "empty": not used}


def variant_bars(test: Table) -> list[dict[str, Any]]:
    """CTR per variant as horizontal bars, the best one full width."""
    top = max((row["ctr"] for row in test.rows if row["ctr"] is not None), default=None)
    return [
        {"variant": row["variant"], "ctr": row["ctr"], "bar": _decimal_pct(row["ctr"] or 0, top) if top else "0"}
        for row in test.rows
    ]
