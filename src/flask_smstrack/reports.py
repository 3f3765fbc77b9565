"""Every number the API, dashboard and CSV show, each computed once here.

Reports are plain functions with explicit parameters that return plain data.
Money stays ``Decimal``; revenue is grouped by currency and never summed
across currencies. Profit, ROI, ROAS, EPC, AOV and cost per conversion use
the revenue in the campaign's own currency.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cached_property
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, literal, select

from .models import Campaign, Click, Conversion, Link
from .state import get_state

_MONEY_Q = Decimal("0.0001")
_RATE_Q = Decimal("0.000001")


def _money(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(_MONEY_Q, rounding=ROUND_HALF_EVEN)


def _ratio(num: Decimal | int | None, den: Decimal | int | None) -> Decimal | None:
    if num is None or den is None or den == 0:
        return None
    return Decimal(num) / Decimal(den)


@dataclass
class CampaignReport:
    """The headline numbers of one campaign (see DESIGN.md, Metrics)."""

    campaign_id: int
    currency: str
    sent: int | None
    delivered: int | None
    clicks: int
    unique_clicks: int
    previews: int
    bots: int
    human_confirmed: int
    conversions: int
    unattributed_conversions: int
    revenue: dict[str, Decimal] = field(default_factory=dict)
    cost: Decimal | None = None

    @property
    def audience(self) -> int | None:
        """The CTR denominator: delivered when known, else sent."""
        return self.delivered if self.delivered is not None else self.sent

    @property
    def own_revenue(self) -> Decimal:
        return self.revenue.get(self.currency, Decimal(0))

    @property
    def ctr(self) -> Decimal | None:
        return _ratio(self.unique_clicks, self.audience)

    @property
    def conversion_rate(self) -> Decimal | None:
        return _ratio(self.conversions, self.unique_clicks)

    @property
    def profit(self) -> Decimal | None:
        return None if self.cost is None else self.own_revenue - self.cost

    @property
    def roi(self) -> Decimal | None:
        return _ratio(self.profit, self.cost)

    @property
    def roas(self) -> Decimal | None:
        return _ratio(self.own_revenue, self.cost)

    @property
    def epc(self) -> Decimal | None:
        return _money(_ratio(self.own_revenue, self.unique_clicks))

    @property
    def aov(self) -> Decimal | None:
        return _money(_ratio(self.own_revenue, self.conversions))

    @property
    def cost_per_conversion(self) -> Decimal | None:
        return _money(_ratio(self.cost, self.conversions))

    def as_dict(self) -> dict:
        """The report as the API serialises it: rates as numbers (fractions),
        money as decimal strings."""
        from .schemas import format_money

        def money(v):
            return None if v is None else format_money(v)

        def rate(v):
            return None if v is None else float(v.quantize(_RATE_Q, rounding=ROUND_HALF_EVEN))

        return {
            "campaign_id": self.campaign_id,
            "currency": self.currency,
            "sent": self.sent,
            "delivered": self.delivered,
            "clicks": self.clicks,
            "unique_clicks": self.unique_clicks,
            "previews": self.previews,
            "bots": self.bots,
            "human_confirmed": self.human_confirmed,
            "ctr": rate(self.ctr),
            "conversions": self.conversions,
            "unattributed_conversions": self.unattributed_conversions,
            "conversion_rate": rate(self.conversion_rate),
            "revenue": {cur: money(v) for cur, v in sorted(self.revenue.items())},
            "cost": money(self.cost),
            "profit": money(self.profit),
            "roi": rate(self.roi),
            "roas": rate(self.roas),
            "epc": money(self.epc),
            "aov": money(self.aov),
            "cost_per_conversion": money(self.cost_per_conversion),
        }


# -- what the database is asked ---------------------------------------------
#
# Clicks are only ever read through two aggregates: counts per minute and
# counts per dimension value. Conversions (far fewer) are read row by row,
# with the dimensions of their click.

_c = Click.__table__.c
_v = Conversion.__table__.c

#: Breakdown dimensions: name -> click column.
DIMENSIONS: dict[str, Any] = {
    "link": _c.link_id,
    "variant": _c.variant_id,
    "device_type": _c.device_type,
    "os": _c.os,
    "browser": _c.browser,
    "country": _c.country,
    "referrer_host": _c.referrer_host,
}


def _minute(column, dialect: str):
    if dialect == "postgresql":
        return func.date_trunc("minute", column)
    return func.strftime("%Y-%m-%d %H:%M:00", column)


def _as_utc(value) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


@dataclass(frozen=True)
class MinuteCount:
    minute: dt.datetime
    kind: str
    clicks: int
    firsts: int
    confirmed: int


@dataclass(frozen=True)
class DimensionCount:
    value: Any
    kind: str
    clicks: int
    firsts: int


@dataclass(frozen=True)
class ConversionRow:
    created_at: dt.datetime
    click_at: dt.datetime | None
    revenue: Decimal | None
    currency: str | None
    dims: dict[str, Any]


def minute_counts(campaign_id: int) -> list[MinuteCount]:
    """Clicks of a campaign per UTC minute and kind."""
    session = get_state().db.session
    minute = _minute(_c.created_at, session.get_bind().dialect.name).label("minute")
    rows = session.execute(
        select(
            minute,
            _c.kind,
            func.count(),
            func.sum(case((_c.is_first, 1), else_=0)),
            func.sum(case((_c.human_confirmed, 1), else_=0)),
        )
        .where(_c.campaign_id == campaign_id)
        .group_by(minute, _c.kind)
    ).all()
    return [MinuteCount(_as_utc(m), k, n, int(f or 0), int(h or 0)) for m, k, n, f, h in rows]


def dimension_counts(campaign_id: int, dimension: str) -> list[DimensionCount]:
    """Clicks of a campaign per value of one dimension and kind."""
    column = DIMENSIONS[dimension]
    rows = get_state().db.session.execute(
        select(column, _c.kind, func.count(), func.sum(case((_c.is_first, 1), else_=0)))
        .where(_c.campaign_id == campaign_id)
        .group_by(column, _c.kind)
    ).all()
    return [DimensionCount(value, kind, n, int(f or 0)) for value, kind, n, f in rows]


def conversion_rows(campaign_id: int) -> list[ConversionRow]:
    """The campaign's attributed conversions, with their click's dimensions."""
    names = list(DIMENSIONS)
    rows = get_state().db.session.execute(
        select(
            _v.created_at,
            _c.created_at,
            _v.revenue,
            _v.currency,
            *(DIMENSIONS[n] for n in names),
        )
        .select_from(Conversion.__table__.outerjoin(Click.__table__, _v.click_pk == _c.id))
        .where(_v.campaign_id == campaign_id)
    ).all()
    out = []
    for created, click_at, revenue, currency, *dims in rows:
        out.append(
            ConversionRow(
                created_at=_as_utc(created),
                click_at=_as_utc(click_at) if click_at is not None else None,
                revenue=Decimal(revenue) if revenue is not None else None,
                currency=currency,
                dims=dict(zip(names, dims)),
            )
        )
    return out


def unattributed_count(campaign_id: int) -> int:
    """Conversions that named one of the campaign's clicks too late."""
    return get_state().db.session.execute(
        select(func.count())
        .select_from(Conversion.__table__.join(Click.__table__, _v.reported_click_id == _c.click_id))
        .where(and_(_v.click_pk.is_(None), _c.campaign_id == campaign_id))
    ).scalar_one()


# -- reports ------------------------------------------------------------------


class CampaignData:
    """Everything the views of one campaign need, each read once."""

    def __init__(self, campaign: Campaign, tz: str | None = None) -> None:
        from flask import current_app

        self.campaign = campaign
        self.tz = ZoneInfo(tz or current_app.config["SMSTRACK_TIMEZONE"])

    @cached_property
    def minutes(self) -> list[MinuteCount]:
        return minute_counts(self.campaign.id)

    @cached_property
    def conversions(self) -> list[ConversionRow]:
        return conversion_rows(self.campaign.id)

    def dimension(self, name: str) -> list[DimensionCount]:
        cache = self.__dict__.setdefault("_dimensions", {})
        if name not in cache:
            cache[name] = dimension_counts(self.campaign.id, name)
        return cache[name]

    @cached_property
    def report(self) -> CampaignReport:
        by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for m in self.minutes:
            totals = by_kind[m.kind]
            totals[0] += m.clicks
            totals[1] += m.firsts
            totals[2] += m.confirmed
        revenue: dict[str, Decimal] = defaultdict(Decimal)
        for conv in self.conversions:
            if conv.currency and conv.revenue is not None:
                revenue[conv.currency] += conv.revenue
        human = by_kind["human"]
        c = self.campaign
        return CampaignReport(
            campaign_id=c.id,
            currency=c.currency,
            sent=c.sent,
            delivered=c.delivered,
            clicks=human[0],
            unique_clicks=human[1],
            previews=by_kind["preview"][0],
            bots=by_kind["bot"][0],
            human_confirmed=human[2],
            conversions=len(self.conversions),
            unattributed_conversions=unattributed_count(c.id),
            revenue=dict(revenue),
            cost=c.total_cost,
        )


def campaign_report(campaign: Campaign) -> CampaignReport:
    """Compute the headline numbers of ``campaign``."""
    return CampaignData(campaign).report


# -- tables: the same rows for the page, the JSON API and CSV -----------------


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    #: ``int``, ``money``, ``rate`` or ``text``: how the value is written.
    kind: str = "int"


@dataclass
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]


_METRIC_COLUMNS = [
    Column("clicks", "Clicks"),
    Column("unique_clicks", "Unique clicks"),
    Column("conversions", "Conversions"),
    Column("conversion_rate", "Conversion rate", "rate"),
    Column("revenue", "Revenue", "money"),
    Column("share", "Share of clicks", "rate"),
]

#: The breakdown tables: name -> (dimension, title, label of the value column).
BREAKDOWNS = {
    "links": ("link", "Links", "Link"),
    "variants": ("variant", "Variants", "Variant"),
    "devices": ("device_type", "Device types", "Device"),
    "os": ("os", "Operating systems", "OS"),
    "browsers": ("browser", "Browsers", "Browser"),
    "countries": ("country", "Countries", "Country"),
    "referrers": ("referrer_host", "Referrers", "Referrer"),
}


def _link_labels(campaign: Campaign) -> dict[Any, str]:
    return {link.id: f"/{link.code} → {link.destination_url}" for link in campaign.links}


def breakdown(data: CampaignData, name: str) -> Table:
    """Human clicks, unique clicks, conversions and revenue per value of one
    dimension, most clicked first."""
    dimension, title, label = BREAKDOWNS[name]
    currency = data.campaign.currency
    stats: dict[Any, dict[str, Any]] = defaultdict(
        lambda: {"clicks": 0, "unique_clicks": 0, "conversions": 0, "revenue": Decimal(0)}
    )
    for count in data.dimension(dimension):
        if count.kind == "human":
            stats[count.value]["clicks"] += count.clicks
            stats[count.value]["unique_clicks"] += count.firsts
    for conv in data.conversions:
        row = stats[conv.dims[dimension]]
        row["conversions"] += 1
        if conv.currency == currency and conv.revenue is not None:
            row["revenue"] += conv.revenue
    total = sum(row["clicks"] for row in stats.values())
    labels = _link_labels(data.campaign) if dimension == "link" else {}
    rows = []
    for value, row in stats.items():
        text = labels.get(value, value) if value is not None else "(unknown)"
        rows.append(
            {
                "value": str(text),
                **row,
                "conversion_rate": _ratio(row["conversions"], row["unique_clicks"]),
                "share": _ratio(row["clicks"], total),
            }
        )
    rows.sort(key=lambda r: (-r["clicks"], -r["conversions"], r["value"]))
    return Table(name, title, [Column("value", label, "text"), *_METRIC_COLUMNS], rows)


def _anchor(data: CampaignData) -> dt.datetime | None:
    """When the campaign went out: its send time, else its first click."""
    if data.campaign.sent_at is not None:
        return data.campaign.sent_at
    times = [m.minute for m in data.minutes]
    times += [c.created_at for c in data.conversions]
    return min(times) if times else None


HOURLY_HOURS = 48


def _next_midnight(moment: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    day = moment.astimezone(tz).date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.timezone.utc)


def _bucket_start(moment: dt.datetime, hourly_end: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Hours until ``hourly_end`` (48 hours after the send), then local days."""
    if moment < hourly_end:
        return moment.replace(minute=0, second=0, microsecond=0)
    local = moment.astimezone(tz)
    midnight = dt.datetime.combine(local.date(), dt.time(0), tzinfo=tz).astimezone(dt.timezone.utc)
    return max(midnight, hourly_end)


def timeseries(data: CampaignData) -> Table:
    """Clicks, unique clicks, conversions and revenue over time: hourly for
    the first 48 hours after the send, then by day in the data's timezone."""
    columns = [
        Column("start", "From", "text"),
        Column("hours", "Hours"),
        Column("clicks", "Clicks"),
        Column("unique_clicks", "Unique clicks"),
        Column("conversions", "Conversions"),
        Column("revenue", "Revenue", "money"),
    ]
    anchor = _anchor(data)
    if anchor is None:
        return Table("timeseries", "Over time", columns, [])
    anchor = anchor.replace(minute=0, second=0, microsecond=0)
    hourly_end = anchor + dt.timedelta(hours=HOURLY_HOURS)

    def empty() -> dict[str, Any]:
        return {"clicks": 0, "unique_clicks": 0, "conversions": 0, "revenue": Decimal(0)}

    buckets: dict[dt.datetime, dict[str, Any]] = defaultdict(empty)
    for m in data.minutes:
        if m.kind == "human":
            b = buckets[_bucket_start(m.minute, hourly_end, data.tz)]
            b["clicks"] += m.clicks
            b["unique_clicks"] += m.firsts
    currency = data.campaign.currency
    for conv in data.conversions:
        b = buckets[_bucket_start(conv.created_at, hourly_end, data.tz)]
        b["conversions"] += 1
        if conv.currency == currency and conv.revenue is not None:
            b["revenue"] += conv.revenue
    if not buckets:
        return Table("timeseries", "Over time", columns, [])
    # Every bucket from the send to the last activity, the empty ones too.
    last = max(buckets)
    rows, start = [], min(anchor, min(buckets))
    while start <= last:
        end = start + dt.timedelta(hours=1) if start < hourly_end else _next_midnight(start, data.tz)
        values = buckets.get(start) or empty()
        hours = round((end - start).total_seconds() / 3600)
        rows.append({"start": start.astimezone(data.tz).isoformat(), "hours": hours, **values})
        start = end
    return Table("timeseries", "Over time", columns, rows)


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def heatmap(data: CampaignData, metric: str) -> Table:
    """Human clicks (``clicks``) or conversions (``conversions``) by weekday
    and hour of day, in the data's timezone."""
    grid = [[0] * 24 for _ in range(7)]
    if metric == "clicks":
        for m in data.minutes:
            if m.kind == "human":
                local = m.minute.astimezone(data.tz)
                grid[local.weekday()][local.hour] += m.clicks
    else:
        for conv in data.conversions:
            local = conv.created_at.astimezone(data.tz)
            grid[local.weekday()][local.hour] += 1
    columns = [Column("weekday", "Day", "text")] + [Column(f"h{h:02d}", f"{h:02d}") for h in range(24)]
    rows = [{"weekday": WEEKDAYS[d], **{f"h{h:02d}": grid[d][h] for h in range(24)}} for d in range(7)]
    title = "Clicks by hour and weekday" if metric == "clicks" else "Conversions by hour and weekday"
    return Table(f"heatmap_{metric}", title, columns, rows)


#: Upper bounds of the delay bins, in minutes, and their labels.
DELAY_BINS = (
    (5, "under 5 min"),
    (15, "5–15 min"),
    (60, "15–60 min"),
    (180, "1–3 h"),
    (720, "3–12 h"),
    (1440, "12–24 h"),
    (2880, "1–2 days"),
    (10080, "2–7 days"),
    (None, "over 7 days"),
)


def _delay_table(name: str, title: str, delays: Iterable[tuple[float, int]]) -> Table:
    counts = [0] * len(DELAY_BINS)
    for minutes, weight in delays:
        for i, (bound, _) in enumerate(DELAY_BINS):
            if bound is None or minutes < bound:
                counts[i] += weight
                break
    total = sum(counts)
    rows = [
        {"delay": label, "count": n, "share": _ratio(n, total)}
        for (_, label), n in zip(DELAY_BINS, counts)
    ]
    columns = [Column("delay", "Delay", "text"), Column("count", "Count"), Column("share", "Share", "rate")]
    return Table(name, title, columns, rows)


def send_to_click(data: CampaignData) -> Table:
    """How long after the send people clicked (human clicks)."""
    anchor = data.campaign.sent_at
    delays = []
    if anchor is not None:
        for m in data.minutes:
            if m.kind == "human" and m.minute >= anchor.replace(second=0, microsecond=0):
                delays.append((max(0.0, (m.minute - anchor).total_seconds() / 60), m.clicks))
    return _delay_table("send_to_click", "Time from send to click", delays)


def click_to_conversion(data: CampaignData) -> Table:
    """How long after their click people converted."""
    delays = [
        ((c.created_at - c.click_at).total_seconds() / 60, 1)
        for c in data.conversions
        if c.click_at is not None and c.created_at >= c.click_at
    ]
    return _delay_table("click_to_conversion", "Time from click to conversion", delays)


def summary(data: CampaignData) -> Table:
    """The campaign's headline numbers as one row."""
    r = data.report
    row = {
        "sent": r.sent, "delivered": r.delivered, "clicks": r.clicks, "unique_clicks": r.unique_clicks,
        "previews": r.previews, "bots": r.bots, "human_confirmed": r.human_confirmed, "ctr": r.ctr,
        "conversions": r.conversions, "unattributed_conversions": r.unattributed_conversions,
        "conversion_rate": r.conversion_rate, "revenue": r.own_revenue if r.revenue or r.cost else Decimal(0),
        "cost": r.cost, "profit": r.profit, "roi": r.roi, "roas": r.roas, "epc": r.epc, "aov": r.aov,
        "cost_per_conversion": r.cost_per_conversion,
    }
    kinds = {"ctr": "rate", "conversion_rate": "rate", "roi": "rate", "roas": "rate", "revenue": "money",
             "cost": "money", "profit": "money", "epc": "money", "aov": "money", "cost_per_conversion": "money"}
    columns = [Column(k, k.replace("_", " ").capitalize(), kinds.get(k, "int")) for k in row]
    return Table("summary", f"Summary ({r.currency})", columns, [row])


def campaign_table(data: CampaignData, name: str) -> Table:
    """One of the campaign's tables by name (see :data:`TABLES`)."""
    if name in BREAKDOWNS:
        return breakdown(data, name)
    return TABLES[name](data)


TABLES = {
    "summary": summary,
    "timeseries": timeseries,
    "heatmap_clicks": lambda d: heatmap(d, "clicks"),
    "heatmap_conversions": lambda d: heatmap(d, "conversions"),
    "send_to_click": send_to_click,
    "click_to_conversion": click_to_conversion,
    **{name: (lambda d, n=name: breakdown(d, n)) for name in BREAKDOWNS},
}
