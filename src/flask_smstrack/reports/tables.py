"""The tables behind every view: breakdowns, time series, heatmaps, delays, the A/B test and the campaign list."""
from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ..models import Campaign
from .campaign import CampaignData, CampaignReport, ratio, undelivered_of
from .rollup_queries import DELAY_LABELS


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
                "conversion_rate": ratio(row["conversions"], row["unique_clicks"]),
                "share": ratio(row["clicks"], total),
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




def _delay_table(name: str, title: str, counts_by_bin: dict[str, int]) -> Table:
    counts = [counts_by_bin.get(str(i), 0) for i in range(len(DELAY_LABELS))]
    total = sum(counts)
    rows = [{"delay": label, "count": n, "share": ratio(n, total)} for label, n in zip(DELAY_LABELS, counts)]
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
        "sent": r.sent, "delivered": r.delivered, "reached": r.reached, "clicks": r.clicks,
        "unique_clicks": r.unique_clicks, "previews": r.previews, "bots": r.bots, "human_confirmed": r.human_confirmed,
        "ctr": r.ctr,
        "conversions": r.conversions, "unattributed_conversions": r.unattributed_conversions,
        "conversion_rate": r.conversion_rate, "revenue": r.own_revenue if r.revenue or r.cost else Decimal(0),
        "revenue_verified": r.own_verified, "revenue_unverified": r.own_unverified, "refunded": r.own_refunded,
        "cost": r.cost, "profit": r.profit, "roi": r.roi, "roas": r.roas, "epc": r.epc, "aov": r.aov,
        "cost_per_conversion": r.cost_per_conversion, "opt_outs": r.opt_outs, "opt_out_rate": r.opt_out_rate,
    }
    kinds = {"ctr": "rate", "conversion_rate": "rate", "roi": "rate", "roas": "rate", "opt_out_rate": "rate",
             "revenue": "money",
             "cost": "money", "profit": "money", "epc": "money", "aov": "money", "cost_per_conversion": "money",
             "revenue_verified": "money", "revenue_unverified": "money", "refunded": "money"}
    columns = [Column(k, k.replace("_", " ").capitalize(), kinds.get(k, "int")) for k in row]
    return Table("summary", f"Summary ({r.currency})", columns, [row])


def send_date(campaign: Campaign, tz: ZoneInfo) -> dt.date:
    """The day the campaign went out (or was created), in ``tz``."""
    return (campaign.sent_at or campaign.created_at).astimezone(tz).date()


#: The campaign list's columns, as the API and CSV write them.
CAMPAIGN_LIST_COLUMNS = [
    Column("id", "Campaign id"),
    Column("name", "Campaign", "text"),
    Column("sent_on", "Sent on", "text"),
    Column("currency", "Currency", "text"),
    Column("sent", "Sent"),
    Column("delivered", "Delivered"),
    Column("reached", "Reached"),
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
    Column("opt_outs", "Opt-outs"),
    Column("opt_out_rate", "Opt-out rate", "rate"),
]


def campaign_list_row(c: Campaign, r: CampaignReport, day: dt.date) -> dict[str, Any]:
    """One campaign's row of the list (see :data:`CAMPAIGN_LIST_COLUMNS`)."""
    from ..schemas import format_money

    other = "; ".join(f"{format_money(v)} {cur}" for cur, v in sorted(r.revenue.items()) if cur != r.currency)
    return {
        "id": c.id, "name": c.name, "sent_on": day.isoformat(), "currency": r.currency,
        "sent": r.sent, "delivered": r.delivered, "reached": r.reached, "clicks": r.clicks,
        "unique_clicks": r.unique_clicks, "previews": r.previews, "bots": r.bots, "ctr": r.ctr, "conversions": r.conversions,
        "conversion_rate": r.conversion_rate, "revenue": r.own_revenue,
        "revenue_other_currencies": other or None, "cost": r.cost, "profit": r.profit,
        "roi": r.roi, "roas": r.roas, "opt_outs": r.opt_outs, "opt_out_rate": r.opt_out_rate,
    }


def campaign_list_table(rows: list[tuple[Campaign, CampaignReport, dt.date]]) -> Table:
    """Campaigns with their headline numbers, one row each, in the given order."""
    return Table("campaigns", "Campaigns", CAMPAIGN_LIST_COLUMNS, [campaign_list_row(*row) for row in rows])


def variant_test(data: CampaignData) -> Table:
    """The A/B/n test: each variant's CTR and conversion rate against the
    first variant's, with a two-proportion test, the probability to be
    better, and a verdict that waits for enough data."""
    from .verdicts import compare_variants, summary_verdict

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
    opt_outs = data.variant_opt_outs
    rows = []
    for v in variants:
        t = totals.get(v.id, Counter())
        key = str(v.id)
        audience = t["messages"] - undelivered_of(t)
        # Opt-outs / delivered, as the campaign's (delivered once receipts came).
        delivered = t["delivered"] if receipts else None
        cost = None
        if campaign.cost_per_segment is not None:
            cost = campaign.cost_per_segment * t["segments"]
        elif campaign.cost_per_message is not None:
            cost = campaign.cost_per_message * t["messages"]
        rows.append(
            {
                "variant": v.name, "weight": v.weight, "messages": t["messages"], "audience": audience,
                "segments": t["segments"], "unique_clicks": firsts[key], "ctr": ratio(firsts[key], audience),
                "conversions": conversions[key], "conversion_rate": ratio(conversions[key], firsts[key]),
                "revenue": revenue[key], "cost": cost, "opt_outs": opt_outs.get(v.id, 0),
                "opt_out_rate": ratio(opt_outs.get(v.id, 0), delivered),
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
    denominator = "Reached" if receipts else "Sent"
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
        Column("opt_outs", "Opt-outs"),
        Column("opt_out_rate", "Opt-out rate", "rate"),
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
