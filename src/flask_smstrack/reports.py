"""Every number the API, dashboard and CSV show, each computed once here.

Reports are plain functions with explicit parameters that return plain data.
Money stays ``Decimal``; revenue is grouped by currency and never summed
across currencies. Profit, ROI, ROAS, EPC, AOV and cost per conversion use
the revenue in the campaign's own currency.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import and_, case, func, select

from .models import Campaign, Click, Conversion
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


def campaign_report(campaign: Campaign) -> CampaignReport:
    """Compute the headline numbers of ``campaign``."""
    session = get_state().db.session
    c = Click.__table__.c
    kinds = session.execute(
        select(
            c.kind,
            func.count(),
            func.sum(case((c.is_first, 1), else_=0)),
            func.sum(case((c.human_confirmed, 1), else_=0)),
        )
        .where(c.campaign_id == campaign.id)
        .group_by(c.kind)
    ).all()
    by_kind = {kind: (count, int(first or 0), int(confirmed or 0)) for kind, count, first, confirmed in kinds}
    human = by_kind.get("human", (0, 0, 0))

    v = Conversion.__table__.c
    money_rows = session.execute(
        select(v.currency, func.count(), func.sum(v.revenue))
        .where(v.campaign_id == campaign.id)
        .group_by(v.currency)
    ).all()
    conversions = sum(count for _, count, _ in money_rows)
    revenue = {cur: Decimal(total) for cur, _, total in money_rows if cur and total is not None}

    late = session.execute(
        select(func.count())
        .select_from(Conversion.__table__.join(Click.__table__, v.reported_click_id == c.click_id))
        .where(and_(v.click_pk.is_(None), c.campaign_id == campaign.id))
    ).scalar_one()

    return CampaignReport(
        campaign_id=campaign.id,
        currency=campaign.currency,
        sent=campaign.sent,
        delivered=campaign.delivered,
        clicks=human[0],
        unique_clicks=human[1],
        previews=by_kind.get("preview", (0, 0, 0))[0],
        bots=by_kind.get("bot", (0, 0, 0))[0],
        human_confirmed=human[2],
        conversions=conversions,
        unattributed_conversions=late,
        revenue=revenue,
        cost=campaign.total_cost,
    )
