"""The campaign list: every campaign the user may see, with its headline
numbers, filtered and sorted, and its CSV."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable
from zoneinfo import ZoneInfo

from flask import (
    render_template,
    request,
    url_for,
)
from flask_login import login_required
from werkzeug.wrappers import Response

from ...manage import (
    list_campaigns,
)
from ...models import Campaign
from ...reports.campaign import CampaignData, CampaignReport
from ...reports.export import csv_download, table_csv
from ...reports.tables import (
    Table,
    campaign_list_table,
    send_date,
)
from .base import bp, dashboard_principal, date_arg, default_tz


@dataclass(frozen=True)
class _ListColumn:
    key: str
    label: str
    #: Sort key of a (campaign, report, send date) row; ``None`` sorts last.
    sort: Callable[[Campaign, CampaignReport, dt.date], Any]
    #: Sorted high to low on the first click of its header.
    desc_first: bool = True
    #: The column's full name, when the label is short.
    title: str | None = None


def _money_key(value: Decimal | None, report: CampaignReport) -> Any:
    # Amounts compare within a currency only: grouped by currency first.
    return None if value is None else (report.currency, value)


LIST_COLUMNS = [
    _ListColumn("name", "Campaign", lambda c, r, d: c.name.casefold(), desc_first=False),
    _ListColumn("date", "sent on", lambda c, r, d: (d, c.id), title="send date"),
    # What it earned first, then the funnel.
    _ListColumn("revenue", "Revenue", lambda c, r, d: _money_key(r.own_revenue, r)),
    _ListColumn("cost", "Cost", lambda c, r, d: _money_key(r.cost, r)),
    _ListColumn("profit", "Profit", lambda c, r, d: _money_key(r.profit, r)),
    _ListColumn("roi", "ROI", lambda c, r, d: r.roi),
    _ListColumn("sent", "Sent", lambda c, r, d: r.audience),
    _ListColumn("clicks", "Clicks", lambda c, r, d: r.clicks),
    _ListColumn("ctr", "CTR", lambda c, r, d: r.ctr),
    _ListColumn("conversions", "Conv.", lambda c, r, d: r.conversions, title="conversions"),
    _ListColumn("conversion_rate", "Conv. rate", lambda c, r, d: r.conversion_rate, title="conversion rate"),
]


_BY_KEY = {c.key: c for c in LIST_COLUMNS}


@dataclass
class _ListRow:
    campaign: Campaign
    report: CampaignReport
    date: dt.date


@dataclass
class _CampaignList:
    rows: list[_ListRow]
    total: int
    start: dt.date | None
    end: dt.date | None
    sort: str
    direction: str
    errors: list[str]


def _campaign_list() -> _CampaignList:
    """The visible campaigns with their reports, filtered and sorted as the
    query string asks."""
    principal = dashboard_principal()
    tz = ZoneInfo(default_tz())
    errors = []
    start, error = date_arg("start", "start")
    errors += [error] if error else []
    end, error = date_arg("end", "end")
    errors += [error] if error else []
    if start and end and start > end:
        errors.append(f"The start date {start} is after the end date {end}: swap them to see campaigns in between.")
        start = end = None
    campaigns = list_campaigns(principal.owner_id, is_admin=principal.is_admin)
    rows = [_ListRow(c, CampaignData(c).report, send_date(c, tz)) for c in campaigns]
    total = len(rows)
    rows = [r for r in rows if (start is None or r.date >= start) and (end is None or r.date <= end)]

    sort = request.args.get("sort", "date")
    column = _BY_KEY.get(sort) or _BY_KEY["date"]
    direction = request.args.get("dir")
    if direction not in ("asc", "desc"):
        direction = "desc" if column.desc_first else "asc"
    keyed = [(column.sort(r.campaign, r.report, r.date), r) for r in rows]
    known = sorted((k for k in keyed if k[0] is not None), key=lambda k: k[0], reverse=direction == "desc")
    rows = [r for _, r in known] + [r for k, r in keyed if k is None]
    return _CampaignList(rows, total, start, end, column.key, direction, errors)


def _list_table(listing: _CampaignList) -> Table:
    """The campaign list as a table for CSV: values of the reports only."""
    return campaign_list_table([(row.campaign, row.report, row.date) for row in listing.rows])


def _list_args(listing: _CampaignList, **changes: Any) -> dict[str, Any]:
    args = {
        "start": listing.start.isoformat() if listing.start else None,
        "end": listing.end.isoformat() if listing.end else None,
        "sort": listing.sort,
        "dir": listing.direction,
    }
    args.update(changes)
    return {k: v for k, v in args.items() if v}


@bp.get("/")
@login_required
def index() -> tuple[str, int]:
    listing = _campaign_list()
    headers = []
    for column in LIST_COLUMNS:
        active = column.key == listing.sort
        if active:
            direction = "asc" if listing.direction == "desc" else "desc"
        else:
            direction = "desc" if column.desc_first else "asc"
        headers.append(
            {
                "column": column,
                "active": active,
                "url": url_for(".index", **_list_args(listing, sort=column.key, dir=direction)),
                "aria": ("descending" if listing.direction == "desc" else "ascending") if active else None,
            }
        )
    return render_template(
        "smstrack/index.html",
        listing=listing,
        headers=headers,
        csv_url=url_for(".campaigns_csv", **_list_args(listing)),
        raw_start=request.args.get("start", ""),
        raw_end=request.args.get("end", ""),
        timezone=default_tz(),
    ), (400 if listing.errors else 200)


@bp.get("/campaigns.csv")
@login_required
def campaigns_csv() -> Response:
    listing = _campaign_list()
    if listing.errors:
        return Response(" ".join(listing.errors) + "\n", status=400, mimetype="text/plain")
    return csv_download(table_csv(_list_table(listing)), "campaigns")
