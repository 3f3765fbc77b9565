"""Every number the API, dashboard and CSV show, each computed once here.

Reports are plain functions with explicit parameters that return plain data.
Money stays ``Decimal``; revenue is grouped by currency and never summed
across currencies. Profit, ROI, ROAS, EPC, AOV and cost per conversion use
the revenue in the campaign's own currency.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select

from ..models import Campaign, Click, Conversion
from ..sms.messages import recipient_totals
from ..state import get_state
from .rollups import DELAY_BOUNDS, CampaignCounts

_MONEY_Q = Decimal("0.0001")


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
    #: Human clicks on a recipient's own link from another device.
    forwards: int = 0
    #: SMS segments of the messages sent to imported recipients.
    segments: int | None = None
    #: Messages a delivery receipt called undelivered or failed.
    undelivered: int | None = None

    @property
    def audience(self) -> int | None:
        """The CTR denominator: each message counts when delivered, or while
        its delivery is unknown (sent); one reported undelivered does not."""
        if self.undelivered is not None and self.sent is not None:
            return self.sent - self.undelivered
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
        from ..schemas import api_value

        def money(v):
            return api_value(v, "money")

        def rate(v):
            return api_value(v, "rate")

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
            "forwards": self.forwards,
            "segments": self.segments,
            "undelivered": self.undelivered,
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


# -- the campaign's aggregates ----------------------------------------------


class CampaignData:
    """Everything the views of one campaign need, each aggregate read once
    (from the rollups plus the live rows after their cut, see rollups.py)."""

    def __init__(self, campaign: Campaign, tz: str | None = None, counts: CampaignCounts | None = None) -> None:
        from flask import current_app

        self.campaign = campaign
        self.tz = ZoneInfo(tz or current_app.config["SMSTRACK_TIMEZONE"])
        self.counts = counts or CampaignCounts(campaign)
        self._clicks: dict[str, list[tuple]] = {}
        self._conversions: dict[str, list[tuple]] = {}

    @cached_property
    def buckets(self) -> list[tuple]:
        """``(start, kind, clicks, firsts, confirmed)`` per 15 minutes."""
        return self.counts.click_buckets()

    def clicks_by(self, dimension: str) -> list[tuple]:
        """``(value, kind, clicks, firsts)``, ``value`` a string (``""``: unknown)."""
        if dimension not in self._clicks:
            self._clicks[dimension] = self.counts.click_dimension(dimension)
        return self._clicks[dimension]

    def conversions_by(self, dimension: str) -> list[tuple]:
        """``(value, currency, conversions, revenue)``."""
        if dimension not in self._conversions:
            self._conversions[dimension] = self.counts.conversion_dimension(dimension)
        return self._conversions[dimension]

    @cached_property
    def conversion_buckets(self) -> list[tuple]:
        """``(start, currency, conversions, revenue)`` per 15 minutes."""
        return [
            (dt.datetime.fromtimestamp(int(value), dt.timezone.utc), cur, n, total)
            for value, cur, n, total in self.conversions_by("bucket")
        ]

    @cached_property
    def recipients(self) -> dict[int | None, Counter]:
        """Per variant id, the recipients' counts (see ``recipient_totals``)."""
        return recipient_totals(self.campaign.id)

    @cached_property
    def report(self) -> CampaignReport:
        by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for _, kind, clicks, firsts, confirmed in self.buckets:
            totals = by_kind[kind]
            totals[0] += clicks
            totals[1] += firsts
            totals[2] += confirmed
        revenue: dict[str, Decimal] = defaultdict(Decimal)
        conversions = 0
        for _, currency, n, total in self.conversion_buckets:
            conversions += n
            if currency:
                revenue[currency] += total
        human = by_kind["human"]
        c = self.campaign
        sent, delivered, segments, undelivered = audience_of(c, self.recipients.values())
        return CampaignReport(
            campaign_id=c.id,
            currency=c.currency,
            sent=sent,
            delivered=delivered,
            segments=segments,
            undelivered=undelivered,
            forwards=by_kind["forward"][0],
            clicks=human[0],
            unique_clicks=human[1],
            previews=by_kind["preview"][0],
            bots=by_kind["bot"][0],
            human_confirmed=human[2],
            conversions=conversions,
            unattributed_conversions=unattributed_count(c.id),
            revenue=dict(revenue),
            cost=c.total_cost,
        )


def undelivered_of(t: Counter) -> int:
    """Messages whose delivery receipt said undelivered or failed."""
    return t["receipts"] - t["delivered"]


def audience_of(campaign: Campaign, totals) -> tuple[int | None, int | None, int | None, int | None]:
    """``(sent, delivered, segments, undelivered)``: from the imported
    recipients' messages once there are any (delivered and undelivered once
    a delivery receipt came), else as entered on the campaign."""
    totals = list(totals)
    messages = sum(t["messages"] for t in totals)
    if not messages:
        return campaign.sent, campaign.delivered, None, None
    if not sum(t["receipts"] for t in totals):
        return messages, campaign.delivered, sum(t["segments"] for t in totals), None
    return (
        messages,
        sum(t["delivered"] for t in totals),
        sum(t["segments"] for t in totals),
        sum(undelivered_of(t) for t in totals),
    )


def unattributed_count(campaign_id: int) -> int:
    """Conversions that named one of the campaign's clicks too late."""
    c, v = Click.__table__.c, Conversion.__table__.c
    return get_state().db.session.execute(
        select(func.count())
        .select_from(Conversion.__table__.join(Click.__table__, v.reported_click_id == c.click_id))
        .where(and_(v.click_pk.is_(None), c.campaign_id == campaign_id))
    ).scalar_one()


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
    #: Sentences that read the table (a test's verdicts).
    notes: list[str] = field(default_factory=list)


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


def _link_labels(campaign: Campaign) -> dict[str, str]:
    return {str(link.id): f"/{link.code} → {link.destination_url}" for link in campaign.links}


def breakdown(data: CampaignData, name: str) -> Table:
    """Human clicks, unique clicks, conversions and revenue per value of one
    dimension, most clicked first."""
    dimension, title, label = BREAKDOWNS[name]
    currency = data.campaign.currency
    stats: dict[Any, dict[str, Any]] = defaultdict(
        lambda: {"clicks": 0, "unique_clicks": 0, "conversions": 0, "revenue": Decimal(0)}
    )
    for value, kind, clicks, firsts in data.clicks_by(dimension):
        if kind == "human":
            stats[value]["clicks"] += clicks
            stats[value]["unique_clicks"] += firsts
    for value, cur, n, total in data.conversions_by(dimension):
        row = stats[value]
        row["conversions"] += n
        if cur == currency:
            row["revenue"] += total
    total = sum(row["clicks"] for row in stats.values())
    labels = _link_labels(data.campaign) if dimension == "link" else {}
    if dimension == "variant":
        labels = {str(v.id): v.name for v in data.campaign.variants}
    rows = []
    for value, row in stats.items():
        text = labels.get(value, value) if value != "" else "(unknown)"
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
    times = [b[0] for b in data.buckets] + [b[0] for b in data.conversion_buckets]
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
    for start, kind, clicks, firsts, _ in data.buckets:
        if kind == "human":
            b = buckets[_bucket_start(start, hourly_end, data.tz)]
            b["clicks"] += clicks
            b["unique_clicks"] += firsts
    currency = data.campaign.currency
    for start, cur, n, total in data.conversion_buckets:
        b = buckets[_bucket_start(start, hourly_end, data.tz)]
        b["conversions"] += n
        if cur == currency:
            b["revenue"] += total
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
        for start, kind, clicks, _, _ in data.buckets:
            if kind == "human":
                local = start.astimezone(data.tz)
                grid[local.weekday()][local.hour] += clicks
    else:
        for start, _, n, _ in data.conversion_buckets:
            local = start.astimezone(data.tz)
            grid[local.weekday()][local.hour] += n
    columns = [Column("weekday", "Day", "text")] + [Column(f"h{h:02d}", f"{h:02d}") for h in range(24)]
    rows = [{"weekday": WEEKDAYS[d], **{f"h{h:02d}": grid[d][h] for h in range(24)}} for d in range(7)]
    title = "Clicks by hour and weekday" if metric == "clicks" else "Conversions by hour and weekday"
    return Table(f"heatmap_{metric}", title, columns, rows)


#: Labels of the delay bins of rollups.DELAY_BOUNDS.
DELAY_LABELS = (
    "under 5 min",
    "5–15 min",
    "15–60 min",
    "1–3 h",
    "3–12 h",
    "12–24 h",
    "1–2 days",
    "2–7 days",
    "over 7 days",
)
assert len(DELAY_LABELS) == len(DELAY_BOUNDS)


def _delay_table(name: str, title: str, counts_by_bin: dict[str, int]) -> Table:
    counts = [counts_by_bin.get(str(i), 0) for i in range(len(DELAY_LABELS))]
    total = sum(counts)
    rows = [{"delay": label, "count": n, "share": _ratio(n, total)} for label, n in zip(DELAY_LABELS, counts)]
    columns = [Column("delay", "Delay", "text"), Column("count", "Count"), Column("share", "Share", "rate")]
    return Table(name, title, columns, rows)


def send_to_click(data: CampaignData) -> Table:
    """How long after the send people clicked (human clicks)."""
    counts: dict[str, int] = defaultdict(int)
    for value, kind, clicks, _ in data.clicks_by("send_delay"):
        if kind == "human":
            counts[value] += clicks
    return _delay_table("send_to_click", "Time from send to click", counts)


def click_to_conversion(data: CampaignData) -> Table:
    """How long after their click people converted."""
    counts: dict[str, int] = defaultdict(int)
    for value, _, n, _ in data.conversions_by("click_delay"):
        if value:
            counts[value] += n
    return _delay_table("click_to_conversion", "Time from click to conversion", counts)


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


def send_date(campaign: Campaign, tz: ZoneInfo) -> dt.date:
    """The day the campaign went out (or was created), in ``tz``."""
    return (campaign.sent_at or campaign.created_at).astimezone(tz).date()


def campaign_list_table(rows: list[tuple[Campaign, CampaignReport, dt.date]]) -> Table:
    """Campaigns with their headline numbers, one row each, in the given order."""
    from ..schemas import format_money

    columns = [
        Column("id", "Campaign id"),
        Column("name", "Campaign", "text"),
        Column("sent_on", "Sent on", "text"),
        Column("currency", "Currency", "text"),
        Column("sent", "Sent"),
        Column("delivered", "Delivered"),
        Column("clicks", "Clicks"),
        Column("unique_clicks", "Unique clicks"),
        Column("previews", "Link previews"),
        Column("bots", "Bots"),
        Column("ctr", "CTR", "rate"),
        Column("conversions", "Conversions"),
        Column("conversion_rate", "Conversion rate", "rate"),
        Column("revenue", "Revenue", "money"),
        Column("revenue_other_currencies", "Revenue in other currencies", "text"),
        Column("cost", "Cost", "money"),
        Column("profit", "Profit", "money"),
        Column("roi", "ROI", "rate"),
        Column("roas", "ROAS", "rate"),
    ]
    out = []
    for c, r, day in rows:
        other = "; ".join(f"{format_money(v)} {cur}" for cur, v in sorted(r.revenue.items()) if cur != r.currency)
        out.append(
            {
                "id": c.id, "name": c.name, "sent_on": day.isoformat(), "currency": r.currency,
                "sent": r.sent, "delivered": r.delivered, "clicks": r.clicks, "unique_clicks": r.unique_clicks,
                "previews": r.previews, "bots": r.bots, "ctr": r.ctr, "conversions": r.conversions,
                "conversion_rate": r.conversion_rate, "revenue": r.own_revenue,
                "revenue_other_currencies": other or None, "cost": r.cost, "profit": r.profit,
                "roi": r.roi, "roas": r.roas,
            }
        )
    return Table("campaigns", "Campaigns", columns, out)


def variant_test(data: CampaignData) -> Table:
    """The A/B/n test: each variant's CTR and conversion rate against the
    first variant's, with a two-proportion test, the probability to be
    better, and a verdict that waits for enough data."""
    from .stats import compare_variants, summary_verdict

    campaign = data.campaign
    variants = list(campaign.variants)
    totals = data.recipients
    receipts = sum(t["receipts"] for t in totals.values())
    firsts: dict[str, int] = defaultdict(int)
    for value, kind, _, n in data.clicks_by("variant"):
        if kind == "human":
            firsts[value] += n
    conversions: dict[str, int] = defaultdict(int)
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    for value, cur, n, total in data.conversions_by("variant"):
        conversions[value] += n
        if cur == campaign.currency:
            revenue[value] += total
    rows = []
    for v in variants:
        t = totals.get(v.id, Counter())
        key = str(v.id)
        audience = t["messages"] - undelivered_of(t)
        cost = None
        if campaign.cost_per_segment is not None:
            cost = campaign.cost_per_segment * t["segments"]
        elif campaign.cost_per_message is not None:
            cost = campaign.cost_per_message * t["messages"]
        rows.append(
            {
                "variant": v.name, "weight": v.weight, "messages": t["messages"], "audience": audience,
                "segments": t["segments"], "unique_clicks": firsts[key], "ctr": _ratio(firsts[key], audience),
                "conversions": conversions[key], "conversion_rate": _ratio(conversions[key], firsts[key]),
                "revenue": revenue[key], "cost": cost,
            }
        )
    notes = []
    if len(rows) >= 2:
        tests = (
            ("ctr", "unique_clicks", "audience", "ctr_p", "ctr_beats", "CTR", "unique clicks", "messages"),
            ("conversion_rate", "conversions", "unique_clicks", "cr_p", "cr_beats", "Conversion rate", "conversions",
             "unique clicks"),
        )
        for metric, hits, base, p_key, beats_key, label, hit_words, base_words in tests:
            over = [r for r in rows if r[hits] > r[base]]
            if over:
                r = over[0]
                notes.append(
                    f"{label} cannot be tested: variant {r['variant']} has more {hit_words} ({r[hits]}) than "
                    f"{base_words} ({r[base]})."
                )
                continue
            comparisons = compare_variants(metric, [(r["variant"], r[hits], r[base]) for r in rows])
            for row, c in zip(rows[1:], comparisons):
                row.update({p_key: c.p_value, beats_key: c.probability_to_beat})
            notes.append(summary_verdict(comparisons))
    denominator = "Delivered or pending" if receipts else "Sent"
    columns = [
        Column("variant", "Variant", "text"),
        Column("weight", "Weight"),
        Column("audience", denominator),
        Column("segments", "Segments"),
        Column("unique_clicks", "Unique clicks"),
        Column("ctr", "CTR", "rate"),
        Column("ctr_p", "CTR p-value", "number"),
        Column("ctr_beats", f"Chance CTR beats {rows[0]['variant'] if rows else 'A'}", "rate"),
        Column("conversions", "Conversions"),
        Column("conversion_rate", "Conversion rate", "rate"),
        Column("cr_p", "Conversion p-value", "number"),
        Column("cr_beats", f"Chance conversion rate beats {rows[0]['variant'] if rows else 'A'}", "rate"),
        Column("revenue", "Revenue", "money"),
        Column("cost", "Cost", "money"),
    ]
    return Table("variant_test", "A/B test", columns, rows, notes)


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
    "variant_test": variant_test,
    **{name: (lambda d, n=name: breakdown(d, n)) for name in BREAKDOWNS},
}


# -- audiences: who to send the next message to ------------------------------


@dataclass(frozen=True)
class AudienceMember:
    phone: str
    external_id: str | None
    attributes: dict[str, str]
    variant: str
    #: Device and country of the recipient's first click, if any.
    device: str | None
    country: str | None
    clicked_at: dt.datetime | None
    converted: bool


def audience(
    campaign: Campaign,
    segment: str = "all",
    *,
    variant: str | None = None,
    device: str | None = None,
    country: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[AudienceMember]:
    """The recipients a message went to, filtered for the next send.

    ``segment`` is ``all``, ``clicked`` (a human click from the recipient,
    forwards excepted), ``clicked_not_converted``, ``not_clicked`` or
    ``converted``. ``device`` and ``country`` filter on the recipient's first
    click, so they select clickers only; ``variant`` is a variant's name.
    """
    from ..models import SENT_CONDITION, Recipient

    session = get_state().db.session
    r, c, v = Recipient.__table__.c, Click.__table__.c, Conversion.__table__.c
    first = (
        select(c.recipient_id, func.min(c.id).label("click_pk"))
        .where(c.campaign_id == campaign.id, c.recipient_id.is_not(None), c.kind == "human")
        .group_by(c.recipient_id)
        .subquery()
    )
    first_click = Click.__table__.alias("first_click")
    fc = first_click.c
    converted = (
        select(v.recipient_id)
        .where(v.campaign_id == campaign.id, v.recipient_id.is_not(None))
        .distinct()
        .subquery()
    )
    names = {row.id: row.name for row in campaign.variants}
    query = (
        select(
            r.phone, r.external_id, r.attributes, r.variant_id, fc.device_type, fc.country, fc.created_at,
            converted.c.recipient_id.is_not(None).label("converted"),
        )
        .select_from(
            Recipient.__table__.outerjoin(first, first.c.recipient_id == r.id)
            .outerjoin(first_click, fc.id == first.c.click_pk)
            .outerjoin(converted, converted.c.recipient_id == r.id)
        )
        .where(r.campaign_id == campaign.id, *SENT_CONDITION)
        .order_by(r.id)
    )
    clicked = first.c.recipient_id.is_not(None)
    is_converted = converted.c.recipient_id.is_not(None)
    if segment == "clicked":
        query = query.where(clicked)
    elif segment == "clicked_not_converted":
        query = query.where(clicked, ~is_converted)
    elif segment == "not_clicked":
        query = query.where(~clicked)
    elif segment == "converted":
        query = query.where(is_converted)
    if variant is not None:
        ids = [vid for vid, name in names.items() if name == variant]
        query = query.where(r.variant_id.in_(ids))
    if device is not None:
        query = query.where(fc.device_type == device.lower())
    if country is not None:
        query = query.where(fc.country == country.upper())
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    return [
        AudienceMember(
            phone, external_id, dict(attributes or {}), names.get(variant_id, ""), device_type, ctry, at, bool(conv)
        )
        for phone, external_id, attributes, variant_id, device_type, ctry, at, conv in session.execute(query)
    ]
