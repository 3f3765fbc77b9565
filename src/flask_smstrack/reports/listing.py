"""The campaign list: the campaigns a user may see, with their headline
numbers, sorted and paged in the database.

A page costs the same few statements for ten campaigns or ten thousand:
one that counts, one that sorts and pages over the campaigns' totals
grouped by campaign (rollups plus the live rows after each campaign's cut;
a page view never builds rollups), and six that read the
page's campaigns, their counts and their opt-outs (and on PostgreSQL, one
that turns off JIT compilation for the transaction). Each row's :class:`CampaignReport` is
built by :func:`~.campaign.build_report` from those counts, so every number
is the one the campaign's own report gives.

Sorting needs the metrics in SQL too (:func:`_sort_expressions`): they
follow the properties of :class:`CampaignReport` and the cost of
:meth:`Campaign.cost_for` term by term, and the tests check that each order
is the order of the report's numbers. Amounts are compared within a
currency (the campaign's): money sorts by currency first. Rates are
compared to ten decimal places, so exact ties stay ties on every database.
Ties and equal values go by campaign id, in the same direction; campaigns
without a value (no cost, so no ROI...) come last either way.
"""
from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterator
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, false, func, select, text, true

from ..models import SENT_CONDITION, Campaign, Click, Conversion, Recipient, RollupState
from ..sms.outbox import RECEIPT_STATUSES
from ..state import get_state
from .campaign import CampaignReport, build_report
from .opt_outs import opt_out_counts, opt_outs_query
from .tables import send_date
from .totals import campaign_scope, click_totals, conversion_totals

#: Campaigns on a page of the dashboard, and the API's default.
PER_PAGE = 50
#: The most the API returns in one page.
MAX_PER_PAGE = 200
#: Campaigns read at a time when the whole list is written out (CSV).
BATCH = 200

#: What the list sorts by: the columns the list shows.
SORT_KEYS = (
    "name", "date", "revenue", "cost", "profit", "roi", "sent", "clicks", "ctr", "conversions", "conversion_rate",
    "opt_out_rate", "reached",
)
#: Amounts: compared within a currency only.
_MONEY = ("revenue", "cost", "profit")


@dataclass(frozen=True)
class ListFilter:
    """Which campaigns: those ``owner_id`` may see (all for an admin), sent
    (or created) between ``start`` and ``end`` inclusive, days in ``tz``."""

    owner_id: str | None
    is_admin: bool = False
    start: dt.date | None = None
    end: dt.date | None = None
    tz: str = "UTC"


@dataclass
class ListRow:
    campaign: Campaign
    report: CampaignReport
    #: The send day (or the day it was created) in the filter's timezone.
    date: dt.date


@dataclass
class ListPage:
    rows: list[ListRow]
    #: Every campaign the user may see, filtered or not.
    total: int
    #: The campaigns the filter keeps.
    matching: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.matching / self.per_page))


def _visible(f: ListFilter):
    return true() if f.is_admin else Campaign.owner_id == f.owner_id


def _from_midnight(day: dt.date, tz: ZoneInfo):
    """Sent at or after the start of ``day`` in ``tz``."""
    try:
        start = dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.timezone.utc)
    except OverflowError:  # before year 1 in UTC, or after 9999
        return true() if day.year == 1 else false()
    return func.coalesce(Campaign.sent_at, Campaign.created_at) >= start


def _in_dates(f: ListFilter):
    tz = ZoneInfo(f.tz)
    conditions = []
    if f.start is not None:
        conditions.append(_from_midnight(f.start, tz))
    if f.end is not None and f.end < dt.date.max:
        conditions.append(~_from_midnight(f.end + dt.timedelta(days=1), tz))
    return and_(true(), *conditions)


def _recipient_totals(campaigns):
    """``(campaign_id, messages, segments, receipts, delivered)`` per
    campaign (a condition or ids), as ``recipient_totals`` counts them per
    variant."""
    r = Recipient.__table__.c
    sent = and_(*SENT_CONDITION)
    receipt = and_(r.message_sid.is_not(None), r.status.in_(RECEIPT_STATUSES))
    return (
        select(
            r.campaign_id,
            func.sum(case((sent, 1), else_=0)).label("messages"),
            func.sum(case((sent, r.segments), else_=0)).label("segments"),
            func.sum(case((receipt, 1), else_=0)).label("receipts"),
            func.sum(case((r.status == "delivered", 1), else_=0)).label("delivered"),
        )
        .where(campaign_scope(campaigns)[1](r.campaign_id))
        .group_by(r.campaign_id)
        .subquery("recipient_totals")
    )


def _sort_expressions(sort: str, campaigns) -> tuple[list, list]:
    """The joins ``sort`` needs and its expression, following
    :class:`CampaignReport` (``audience``, ``ctr``, ``roi``...)."""
    cp = Campaign.__table__.c
    joins = []

    def joined(subquery):
        joins.append(subquery)
        return subquery.c

    def zero(column):
        return func.coalesce(column, 0)

    def rate(num, den):
        return func.round(num / func.nullif(den, 0), 10)

    need = {
        "clicks": "k", "ctr": "kr", "conversion_rate": "kv", "conversions": "v", "revenue": "v",
        "profit": "vr", "roi": "vr", "cost": "r", "sent": "r", "reached": "r", "opt_out_rate": "or",
    }.get(sort, "")
    if "k" in need:
        k = joined(click_totals(campaigns, kind="human"))
        clicks, firsts = zero(k.clicks), zero(k.firsts)
    if "v" in need:
        totals = conversion_totals(campaigns)
        # CampaignReport.own_revenue: see counted_revenue().
        counted = case((cp.verified_revenue_only, totals.c.verified_revenue), else_=totals.c.revenue) - totals.c.refunded
        own = (totals.c.currency == cp.currency, counted)
        v = joined(
            select(
                totals.c.campaign_id,
                func.sum(totals.c.conversions).label("conversions"),
                func.sum(case(own, else_=0)).label("revenue"),
            )
            .join(Campaign.__table__, cp.id == totals.c.campaign_id)
            .group_by(totals.c.campaign_id)
            .subquery("own_revenue")
        )
        conversions, revenue = zero(v.conversions), func.round(zero(v.revenue), 4)
    if "r" in need:
        r = joined(_recipient_totals(campaigns))
        messages, segments, receipts, delivered = (zero(r[n]) for n in ("messages", "segments", "receipts", "delivered"))
        # CampaignReport.audience of audience_of(...)
        audience = case(
            (messages == 0, func.coalesce(cp.delivered, cp.sent)),
            (receipts == 0, func.coalesce(cp.delivered, messages)),
            else_=messages - (receipts - delivered),
        )
        # Campaign.cost_for(messages, segments)
        cost = func.round(
            case(
                (cp.cost.is_not(None), cp.cost),
                (cp.cost_per_segment.is_not(None), case((messages > 0, cp.cost_per_segment * segments))),
                (cp.cost_per_message.is_not(None), cp.cost_per_message * case((messages > 0, messages), else_=cp.sent)),
            ),
            4,
        )
    if "o" in need:
        o = joined(opt_outs_query(campaign_scope(campaigns)[1]).subquery("opt_outs"))
        # CampaignReport.delivered of audience_of(...)
        known = case((and_(messages > 0, receipts > 0), delivered), else_=cp.delivered)
    expression = {
        "name": lambda: func.lower(cp.name),
        "date": lambda: func.coalesce(cp.sent_at, cp.created_at),
        "revenue": lambda: revenue,
        "cost": lambda: cost,
        "profit": lambda: revenue - cost,
        "roi": lambda: rate(revenue - cost, cost),
        # "sent" is the former name of "reached" (what CTR divides by).
        "sent": lambda: audience,
        "reached": lambda: audience,
        "clicks": lambda: clicks,
        "ctr": lambda: rate(firsts, audience),
        "conversions": lambda: conversions,
        "conversion_rate": lambda: rate(conversions, firsts),
        "opt_out_rate": lambda: rate(zero(o.opt_outs), known),
    }[sort]()
    return joins, [expression]


def _ordered_ids(f: ListFilter, sort: str, descending: bool):
    """The ids of the campaigns ``f`` keeps, in the order asked (a SELECT)."""
    if sort not in SORT_KEYS:
        raise ValueError(f"unknown sort key {sort!r}")
    cp = Campaign.__table__.c
    campaigns = and_(_visible(f), _in_dates(f))
    joins, (expression,) = _sort_expressions(sort, campaigns)
    source = Campaign.__table__
    for subquery in joins:
        source = source.outerjoin(subquery, subquery.c.campaign_id == cp.id)

    def direction(column):
        return column.desc() if descending else column.asc()

    order = [expression.is_(None)]
    if sort in _MONEY:
        order.append(direction(cp.currency))
    order += [direction(expression), direction(cp.id)]
    return select(cp.id).select_from(source).where(campaigns).order_by(*order)


def _rows(ids: list[int], tz: ZoneInfo) -> list[ListRow]:
    """The campaigns ``ids`` with their reports, in that order: six statements."""
    if not ids:
        return []
    session = get_state().db.session
    by_id = {c.id: c for c in session.execute(select(Campaign).where(Campaign.id.in_(ids))).scalars()}
    chosen = list(ids)
    clicks: dict[int, dict[str, tuple[int, int, int]]] = defaultdict(dict)
    totals = click_totals(chosen, confirmed=True)
    for cid, kind, n, firsts, confirmed in session.execute(select(totals)):
        clicks[cid][kind] = (int(n), int(firsts), int(confirmed))
    conversions: dict[int, list[tuple]] = defaultdict(list)
    totals = conversion_totals(chosen)
    for cid, currency, n, revenue, verified, verified_revenue, refunded in session.execute(select(totals)):
        conversions[cid].append(
            (currency, int(n), Decimal(revenue), int(verified), Decimal(verified_revenue), Decimal(refunded))
        )
    recipients: dict[int, Counter] = defaultdict(Counter)
    totals = _recipient_totals(chosen)
    for cid, *counts in session.execute(select(totals)):
        recipients[cid].update(dict(zip(("messages", "segments", "receipts", "delivered"), map(int, counts))))
    unattributed = {cid: int(n) for cid, n in session.execute(_unattributed_counts(ids))}
    opt_outs = opt_out_counts(ids)
    return [
        ListRow(
            c,
            build_report(
                c, clicks[c.id], conversions[c.id], [recipients[c.id]], unattributed.get(c.id, 0), opt_outs.get(c.id, 0)
            ),
            send_date(c, tz),
        )
        for c in (by_id[i] for i in ids if i in by_id)
    ]


def _unattributed_counts(ids: list[int]):
    """``(campaign_id, n)``: as ``unattributed_count`` counts them for one."""
    c, v, s = Click.__table__.c, Conversion.__table__.c, RollupState.__table__.c
    live = (
        select(c.campaign_id.label("campaign_id"), func.count().label("n"))
        .select_from(Conversion.__table__.join(Click.__table__, v.reported_click_id == c.click_id))
        .where(v.click_pk.is_(None), c.campaign_id.in_(ids))
        .group_by(c.campaign_id)
    )
    purged = select(s.campaign_id, s.unattributed).where(s.campaign_id.in_(ids), s.unattributed != 0)
    u = live.union_all(purged).subquery()
    return select(u.c.campaign_id, func.sum(u.c.n)).group_by(u.c.campaign_id)


def _ready(f: ListFilter) -> None:
    """Ready the reads (the rollups are only read: see :func:`~.rollups.catch_up`)."""
    session = get_state().db.session
    if session.get_bind().dialect.name == "postgresql":
        # With thousands of campaigns, the estimated cost of these grouped
        # reads passes PostgreSQL's threshold for compiling a query (JIT),
        # which then takes longer than the reads (tens of milliseconds
        # against a few). For this transaction only.
        session.execute(text("SET LOCAL jit = off"))


def campaign_list(
    f: ListFilter, *, sort: str = "date", descending: bool = True, page: int = 1, per_page: int = PER_PAGE
) -> ListPage:
    """One page of the campaigns ``f`` keeps, sorted by ``sort`` (one of
    :data:`SORT_KEYS`), with their reports. A page past the last is empty."""
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise ValueError(f"page {page} of {per_page} campaigns")
    session = get_state().db.session
    _ready(f)
    total, matching = session.execute(
        select(func.count(), func.coalesce(func.sum(case((_in_dates(f), 1), else_=0)), 0))
        .select_from(Campaign.__table__).where(_visible(f))
    ).one()
    query = _ordered_ids(f, sort, descending).limit(per_page).offset((page - 1) * per_page)
    ids = list(session.execute(query).scalars())
    return ListPage(_rows(ids, ZoneInfo(f.tz)), int(total), int(matching), page, per_page)


def campaign_list_all(f: ListFilter, *, sort: str = "date", descending: bool = True) -> Iterator[ListRow]:
    """Every campaign ``f`` keeps, sorted, read :data:`BATCH` at a time: the
    order is taken once (the ids only), then each batch costs the same six
    statements, and only the batch is held in memory."""
    session = get_state().db.session
    _ready(f)
    ids = list(session.execute(_ordered_ids(f, sort, descending)).scalars())
    tz = ZoneInfo(f.tz)
    for i in range(0, len(ids), BATCH):
        yield from _rows(ids[i : i + BATCH], tz)

