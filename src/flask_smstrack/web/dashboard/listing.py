"""The campaign list: the campaigns the user may see, with their headline
numbers, filtered, sorted and paged (see reports/listing.py), and its CSV."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import (
    render_template,
    request,
    url_for,
)
from flask_login import login_required
from werkzeug.wrappers import Response

from ...reports.export import campaign_list_csv, csv_download
from ...reports.listing import ListFilter, ListPage, campaign_list, campaign_list_all
from ..list_args import descending_first, list_args
from .base import bp, dashboard_principal, date_arg, default_tz


@dataclass(frozen=True)
class _ListColumn:
    key: str
    label: str
    #: The column's full name, when the label is short.
    title: str | None = None


LIST_COLUMNS = [
    _ListColumn("name", "Campaign"),
    _ListColumn("date", "sent on", title="send date"),
    # What it earned first, then the funnel.
    _ListColumn("revenue", "Revenue"),
    _ListColumn("cost", "Cost"),
    _ListColumn("profit", "Profit"),
    _ListColumn("roi", "ROI"),
    _ListColumn("reached", "Reached", title="reached: sent minus undelivered, what CTR divides by"),
    _ListColumn("clicks", "Clicks"),
    _ListColumn("ctr", "CTR"),
    _ListColumn("conversions", "Conv.", title="conversions"),
    _ListColumn("conversion_rate", "Conv. rate", title="conversion rate"),
    _ListColumn("opt_out_rate", "Opt-outs", title="opt-out rate"),
]


@dataclass
class _Listing:
    filter: ListFilter
    sort: str
    direction: str
    page: int
    errors: list[str] = field(default_factory=list)
    #: The page shown (``None`` for the CSV, which writes every row).
    result: ListPage | None = None

    @property
    def rows(self):
        return self.result.rows if self.result else []

    @property
    def total(self) -> int:
        return self.result.total if self.result else 0


def _listing() -> _Listing:
    """The list's filter, order and page as the query string asks, with a
    message for each part it got wrong (that part then takes its default)."""
    principal = dashboard_principal()
    errors = []
    start, error = date_arg("start", "start")
    errors += [error] if error else []
    end, error = date_arg("end", "end")
    errors += [error] if error else []
    if start and end and start > end:
        errors.append(f"The start date {start} is after the end date {end}: swap them to see campaigns in between.")
        start = end = None
    values, wrong = list_args(request.args, per_page=False)
    errors += [message for messages in wrong.values() for message in messages]
    f = ListFilter(principal.owner_id, principal.is_admin, start, end, default_tz())
    return _Listing(f, values["sort"], "desc" if values["descending"] else "asc", values["page"], errors)


def _list_args(listing: _Listing, **changes: Any) -> dict[str, Any]:
    args = {
        "start": listing.filter.start.isoformat() if listing.filter.start else None,
        "end": listing.filter.end.isoformat() if listing.filter.end else None,
        "sort": listing.sort,
        "dir": listing.direction,
    }
    args.update(changes)
    return {k: v for k, v in args.items() if v and (k != "page" or v != 1)}


@bp.get("/")
@login_required
def index() -> tuple[str, int]:
    listing = _listing()
    descending = listing.direction == "desc"
    listing.result = campaign_list(listing.filter, sort=listing.sort, descending=descending, page=listing.page)
    status = 400 if listing.errors else 200
    if listing.page > listing.result.pages:
        listing.errors.append(
            f"There is no page {listing.page}: the list has {listing.result.pages}. Showing the last page."
        )
        listing.page = listing.result.pages
        listing.result = campaign_list(listing.filter, sort=listing.sort, descending=descending, page=listing.page)
        status = 404
    headers = []
    for column in LIST_COLUMNS:
        active = column.key == listing.sort
        if active:
            direction = "asc" if descending else "desc"
        else:
            direction = "desc" if descending_first(column.key) else "asc"
        headers.append(
            {
                "column": column,
                "active": active,
                "url": url_for(".index", **_list_args(listing, sort=column.key, dir=direction)),
                "aria": ("descending" if descending else "ascending") if active else None,
            }
        )
    result = listing.result
    return render_template(
        "smstrack/index.html",
        listing=listing,
        headers=headers,
        csv_url=url_for(".campaigns_csv", **_list_args(listing)),
        previous_url=url_for(".index", **_list_args(listing, page=listing.page - 1)) if listing.page > 1 else None,
        next_url=url_for(".index", **_list_args(listing, page=listing.page + 1)) if listing.page < result.pages else None,
        raw_start=request.args.get("start", ""),
        raw_end=request.args.get("end", ""),
        timezone=default_tz(),
    ), status


@bp.get("/campaigns.csv")
@login_required
def campaigns_csv() -> Response:
    """Every campaign the filter keeps, in the list's order (not one page)."""
    listing = _listing()
    if listing.errors:
        return Response(" ".join(listing.errors) + "\n", status=400, mimetype="text/plain")
    rows = campaign_list_all(listing.filter, sort=listing.sort, descending=listing.direction == "desc")
    return csv_download(campaign_list_csv(rows), "campaigns")
