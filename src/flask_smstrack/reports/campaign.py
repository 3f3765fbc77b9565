"""Every number the API, dashboard and CSV show, each computed once here.

Reports are plain functions with explicit parameters that return plain data.
Money stays ``Decimal``; revenue is grouped by currency and never summed
across currencies. Profit, ROI, ROAS, EPC, AOV and cost per conversion use
the revenue in the campaign's own currency, net of refunds, and only the
verified revenue when the campaign counts verified revenue only; AOV
divides it by the orders in that currency (the conversions that carry
revenue in it, the verified ones when only those count), not by every
conversion.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cached_property
from typing import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select

from ..config import Keys
from ..models import Campaign, Click, Conversion, RollupState
from ..sms.outbox import recipient_totals
from ..state import get_state
from .opt_outs import opt_out_counts, opt_outs_by_variant
from .rollup_reads import CampaignCounts
from .totals import click_totals, conversion_totals

_MONEY_Q = Decimal("0.0001")


def money(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(_MONEY_Q, rounding=ROUND_HALF_EVEN)


def ratio(num: Decimal | int | None, den: Decimal | int | None) -> Decimal | None:
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
    #: Revenue per currency, verified and unverified, before refunds.
    revenue: dict[str, Decimal] = field(default_factory=dict)
    #: Conversions with revenue in the campaign's currency (a sign-up without
    #: revenue, or an order in another currency, is not one).
    orders: int = 0
    #: The verified part of ``revenue`` (API keys, host code, tokens).
    verified_revenue: dict[str, Decimal] = field(default_factory=dict)
    #: The verified conversions among ``orders``.
    verified_orders: int = 0
    #: Refunds per currency (of verified conversions).
    refunded: dict[str, Decimal] = field(default_factory=dict)
    #: The campaign's "count verified revenue only" setting.
    verified_revenue_only: bool = False
    cost: Decimal | None = None
    #: Human clicks on a recipient's own link from another device.
    forwards: int = 0
    #: SMS segments of the messages sent to imported recipients.
    segments: int | None = None
    #: Messages a delivery receipt called undelivered or failed.
    undelivered: int | None = None
    #: Numbers that replied STOP (or another opt-out word) to the campaign's
    #: messages, each once (see :mod:`.opt_outs`).
    opt_outs: int = 0

    @property
    def audience(self) -> int | None:
        """The CTR denominator: each message counts when delivered, or while
        its delivery is unknown (sent); one reported undelivered does not."""
        if self.undelivered is not None and self.sent is not None:
            return self.sent - self.undelivered
        return self.delivered if self.delivered is not None else self.sent

    @property
    def reached(self) -> int | None:
        """What CTR divides by, by the name the reports show (see :mod:`.terms`)."""
        return self.audience

    @property
    def unverified_revenue(self) -> dict[str, Decimal]:
        return {cur: v - self.verified_revenue.get(cur, Decimal(0)) for cur, v in self.revenue.items()}

    @property
    def own_revenue(self) -> Decimal:
        """The revenue the metrics count: the campaign's currency, net of
        refunds, verified only when the campaign says so."""
        return counted_revenue(
            self.verified_revenue_only, self.revenue.get(self.currency, Decimal(0)),
            self.verified_revenue.get(self.currency, Decimal(0)), self.refunded.get(self.currency, Decimal(0)),
        )

    @property
    def own_verified(self) -> Decimal:
        """Verified revenue in the campaign's currency, before refunds."""
        return self.verified_revenue.get(self.currency, Decimal(0))

    @property
    def own_unverified(self) -> Decimal:
        return self.unverified_revenue.get(self.currency, Decimal(0))

    @property
    def own_refunded(self) -> Decimal:
        return self.refunded.get(self.currency, Decimal(0))

    @property
    def counted_orders(self) -> int:
        return self.verified_orders if self.verified_revenue_only else self.orders

    @property
    def ctr(self) -> Decimal | None:
        return ratio(self.unique_clicks, self.audience)

    @property
    def conversion_rate(self) -> Decimal | None:
        return ratio(self.conversions, self.unique_clicks)

    @property
    def opt_out_rate(self) -> Decimal | None:
        """Opt-outs / delivered; ``None`` while nothing is known delivered."""
        return ratio(self.opt_outs, self.delivered)

    @property
    def profit(self) -> Decimal | None:
        return None if self.cost is None else self.own_revenue - self.cost

    @property
    def roi(self) -> Decimal | None:
        return ratio(self.profit, self.cost)

    @property
    def roas(self) -> Decimal | None:
        return ratio(self.own_revenue, self.cost)

    @property
    def epc(self) -> Decimal | None:
        return money(ratio(self.own_revenue, self.unique_clicks))

    @property
    def aov(self) -> Decimal | None:
        return money(ratio(self.own_revenue, self.counted_orders))

    @property
    def cost_per_conversion(self) -> Decimal | None:
        return money(ratio(self.cost, self.conversions))

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
            "reached": self.reached,
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
            "revenue_verified": {cur: money(self.verified_revenue.get(cur, 0)) for cur in sorted(self.revenue)},
            "revenue_unverified": {cur: money(v) for cur, v in sorted(self.unverified_revenue.items())},
            "refunded": {cur: money(self.refunded.get(cur, 0)) for cur in sorted(self.revenue)},
            "verified_revenue_only": self.verified_revenue_only,
            "net_revenue": money(self.own_revenue),
            "cost": money(self.cost),
            "profit": money(self.profit),
            "roi": rate(self.roi),
            "roas": rate(self.roas),
            "epc": money(self.epc),
            "aov": money(self.aov),
            "cost_per_conversion": money(self.cost_per_conversion),
            "opt_outs": self.opt_outs,
            "opt_out_rate": rate(self.opt_out_rate),
        }


class CampaignData:
    """Everything the views of one campaign need, each aggregate read once
    (from the rollups plus the live rows after their cut, see rollup_reads.py)."""

    def __init__(self, campaign: Campaign, tz: str | None = None, counts: CampaignCounts | None = None) -> None:
        from flask import current_app

        self.campaign = campaign
        self.tz = ZoneInfo(tz or current_app.config[Keys.TIMEZONE])
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

    def conversion_counts(self, dimension: str) -> list[tuple]:
        """``(value, currency, conversions, revenue, verified,
        verified_revenue, refunded)``; ``currency`` is the revenue's, ``""``
        for conversions without revenue."""
        if dimension not in self._conversions:
            self._conversions[dimension] = self.counts.conversion_dimension(dimension)
        return self._conversions[dimension]

    def conversions_by(self, dimension: str) -> list[tuple]:
        """``(value, currency, conversions, revenue)``, ``revenue`` as the
        metrics count it (see :func:`counted_revenue`)."""
        only = self.campaign.verified_revenue_only
        return [
            (value, cur, n, counted_revenue(only, revenue, verified_revenue, refunded))
            for value, cur, n, revenue, _, verified_revenue, refunded in self.conversion_counts(dimension)
        ]

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
    def opt_outs(self) -> int:
        """The numbers that opted out in reply to the campaign (see :mod:`.opt_outs`)."""
        return opt_out_counts([self.campaign.id]).get(self.campaign.id, 0)

    @cached_property
    def variant_opt_outs(self) -> dict[int | None, int]:
        """The same per variant id."""
        return opt_outs_by_variant(self.campaign.id)

    @cached_property
    def report(self) -> CampaignReport:
        clicks: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        if "buckets" in self.__dict__:  # read already (the page's charts)
            for _, kind, n, firsts, confirmed in self.buckets:
                totals = clicks[kind]
                totals[0] += n
                totals[1] += firsts
                totals[2] += confirmed
            conversions = [row[1:] for row in self.conversion_counts("bucket")]
        else:
            # Summed by the database: a campaign's 15-minute buckets grow
            # with its months of clicks, the totals do not.
            session = get_state().db.session
            ids = [self.campaign.id]
            for _, kind, n, firsts, confirmed in session.execute(select(click_totals(ids, confirmed=True))):
                clicks[kind] = [int(n or 0), int(firsts or 0), int(confirmed or 0)]
            conversions = [
                (cur, int(n or 0), Decimal(revenue or 0), int(verified or 0), Decimal(verified_revenue or 0),
                 Decimal(refunded or 0))
                for _, cur, n, revenue, verified, verified_revenue, refunded in session.execute(
                    select(conversion_totals(ids))
                )
            ]
        c = self.campaign
        return build_report(
            c, clicks, conversions, self.recipients.values(), unattributed_count(c.id), self.opt_outs
        )


def build_report(
    campaign: Campaign,
    clicks: Mapping[str, Sequence[int]],
    conversions: Iterable[tuple[str, int, Decimal]],
    recipients: Iterable[Counter],
    unattributed: int,
    opt_outs: int = 0,
) -> CampaignReport:
    """The report of ``campaign`` from its counts, however they were read:
    ``clicks`` is ``kind -> (clicks, firsts, confirmed)``; ``conversions``
    are ``(currency, conversions, revenue, verified, verified_revenue,
    refunded)`` rows (currency ``""`` for none); ``recipients`` the
    recipients' counts (see ``recipient_totals``); ``opt_outs`` the
    numbers that opted out (see :mod:`.opt_outs`)."""
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    verified_revenue: dict[str, Decimal] = defaultdict(Decimal)
    refunded: dict[str, Decimal] = defaultdict(Decimal)
    count = orders = verified_orders = 0
    for currency, n, total, verified, verified_total, refunds in conversions:
        count += n
        if currency:
            revenue[currency] += total
            verified_revenue[currency] += verified_total
            refunded[currency] += refunds
        if currency == campaign.currency:
            orders += n
            verified_orders += verified
    recipients = list(recipients)
    sent, delivered, segments, undelivered = audience_of(campaign, recipients)
    human, none = clicks.get("human", (0, 0, 0)), (0, 0, 0)
    return CampaignReport(
        campaign_id=campaign.id,
        currency=campaign.currency,
        sent=sent,
        delivered=delivered,
        segments=segments,
        undelivered=undelivered,
        forwards=clicks.get("forward", none)[0],
        clicks=human[0],
        unique_clicks=human[1],
        previews=clicks.get("preview", none)[0],
        bots=clicks.get("bot", none)[0],
        human_confirmed=human[2],
        conversions=count,
        unattributed_conversions=unattributed,
        revenue=dict(revenue),
        orders=orders,
        verified_revenue=dict(verified_revenue),
        verified_orders=verified_orders,
        refunded=dict(refunded),
        verified_revenue_only=bool(campaign.verified_revenue_only),
        opt_outs=opt_outs,
        cost=campaign.cost_for(sum(t["messages"] for t in recipients), sum(t["segments"] for t in recipients)),
    )


def counted_revenue(verified_only: bool, revenue: Decimal, verified_revenue: Decimal, refunded: Decimal) -> Decimal:
    """The revenue that profit, ROI, ROAS, EPC and AOV count: net of refunds
    (which verified conversions only have), and the verified revenue only
    when ``verified_only``."""
    return (verified_revenue if verified_only else revenue) - refunded


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
    """Conversions that named one of the campaign's clicks too late: those
    stored, and those a purge counted before deleting them or their click."""
    c, v = Click.__table__.c, Conversion.__table__.c
    session = get_state().db.session
    live = session.execute(
        select(func.count())
        .select_from(Conversion.__table__.join(Click.__table__, v.reported_click_id == c.click_id))
        .where(and_(v.click_pk.is_(None), c.campaign_id == campaign_id))
    ).scalar_one()
    purged = session.execute(select(RollupState.unattributed).where(RollupState.campaign_id == campaign_id)).scalar()
    return live + int(purged or 0)


def campaign_report(campaign: Campaign) -> CampaignReport:
    """Compute the headline numbers of ``campaign``."""
    return CampaignData(campaign).report

