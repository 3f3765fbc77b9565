"""The channel comparison: the campaigns of each channel (SMS, email,
social, QR, print, other) per month, with their clicks, conversions,
revenue, cost, profit and ROI.

Each campaign counts in the month it was sent (or created, without a send
time) in the report's timezone, with the numbers of its own report (see
:func:`~.campaign.build_report`, read through the campaign list: rollups
plus the live rows after their cut, never building rollups). A row is one
channel, month and currency, and money is never added across currencies:
a campaign's campaigns, clicks, conversions and cost go to the row of its
currency; its revenue to the row of each currency the revenue came in
(net of refunds, verified only when the campaign counts only that).
Profit and ROI are those of the campaign reports, added up: the revenue in
each campaign's own currency minus its cost, for the campaigns whose cost
is known, so a row's profit is not its revenue minus its cost when some
of its revenue came to campaigns without a cost or in another currency.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..models.channels import CHANNELS
from .campaign import counted_revenue, ratio
from .listing import ListFilter, campaign_list_all
from .tables import Column, Table

#: The comparison's columns, as the dashboard, the API and the CSV show them.
CHANNEL_COLUMNS = [
    Column("channel", "Channel", "text"),
    Column("month", "Month", "text"),
    Column("currency", "Currency", "text"),
    Column("campaigns", "Campaigns"),
    Column("clicks", "Clicks"),
    Column("unique_clicks", "Unique clicks"),
    Column("conversions", "Conversions"),
    Column("revenue", "Revenue", "money"),
    Column("cost", "Cost", "money"),
    Column("profit", "Profit", "money"),
    Column("roi", "ROI", "rate"),
]

#: How the dashboard names each channel.
CHANNEL_LABELS = {
    "sms": "SMS", "email": "Email", "social": "Social", "qr": "QR code", "print": "Print", "other": "Other",
}


@dataclass
class ChannelRow:
    """One channel, month (``YYYY-MM``) and currency."""

    channel: str
    month: str
    currency: str
    campaigns: int = 0
    clicks: int = 0
    unique_clicks: int = 0
    conversions: int = 0
    revenue: Decimal = field(default_factory=Decimal)
    #: ``None`` while no campaign of the row has a cost.
    cost: Decimal | None = None
    profit: Decimal | None = None

    @property
    def roi(self) -> Decimal | None:
        return ratio(self.profit, self.cost)

    def as_row(self) -> dict[str, Any]:
        return {c.key: getattr(self, c.key) for c in CHANNEL_COLUMNS}


def _add(total: Decimal | None, value: Decimal | None) -> Decimal | None:
    if value is None:
        return total
    return value if total is None else total + value


def channel_comparison(owner_id: str | None, *, is_admin: bool = False, tz: str = "UTC") -> list[ChannelRow]:
    """The comparison of the campaigns ``owner_id`` may see (every one for
    an admin), months in ``tz``: rows by month, then channel (in the order
    of :data:`CHANNELS`), then currency."""
    rows: dict[tuple[str, str, str], ChannelRow] = {}

    def row(channel: str, month: str, currency: str) -> ChannelRow:
        key = (channel, month, currency)
        if key not in rows:
            rows[key] = ChannelRow(channel, month, currency)
        return rows[key]

    for item in campaign_list_all(ListFilter(owner_id, is_admin, tz=tz), sort="date", descending=False):
        campaign, report = item.campaign, item.report
        channel = campaign.channel or "sms"
        month = f"{item.date:%Y-%m}"
        own = row(channel, month, report.currency)
        own.campaigns += 1
        own.clicks += report.clicks
        own.unique_clicks += report.unique_clicks
        own.conversions += report.conversions
        own.cost = _add(own.cost, report.cost)
        own.profit = _add(own.profit, report.profit)
        for currency, revenue in report.revenue.items():
            row(channel, month, currency).revenue += counted_revenue(
                report.verified_revenue_only, revenue, report.verified_revenue.get(currency, Decimal(0)),
                report.refunded.get(currency, Decimal(0)),
            )
    order = {name: i for i, name in enumerate(CHANNELS)}
    return sorted(rows.values(), key=lambda r: (r.month, order.get(r.channel, len(order)), r.currency))


def channel_table(owner_id: str | None, *, is_admin: bool = False, tz: str = "UTC") -> Table:
    """:func:`channel_comparison` as a report table (for JSON and CSV)."""
    rows = channel_comparison(owner_id, is_admin=is_admin, tz=tz)
    return Table("channels", "Channels", CHANNEL_COLUMNS, [r.as_row() for r in rows])
