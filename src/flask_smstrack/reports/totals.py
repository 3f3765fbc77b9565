"""The headline counts of many campaigns at once: one statement for all
of them, grouped by campaign, rollup plus the live rows after each
campaign's cut, as :class:`~.rollups.CampaignCounts` adds them for one.

Each function returns a subquery over every campaign matching a condition
on :class:`Campaign`, to join or to read. The aggregates are the rollups'
own (see rollups.py). Every click and conversion has exactly one value in
each dimension (``""`` when unknown), so the rows of any one dimension add
up to a campaign's totals: these read the variant dimension, which has the
fewest rows. Only the 15-minute click rollup counts human-confirmed clicks.
"""
from __future__ import annotations

from sqlalchemy import Subquery, and_, func, literal, select

from ..models import Campaign, Click, ClickDimensionRollup, ClickRollup, Conversion, ConversionRollup, RollupState
from .rollups import (
    CONVERSIONS_AND_CLICKS,
    EPOCH,
    click_buckets_query,
    click_dimension_query,
    conversion_dimension_query,
    dialect_name,
)

_DIMENSION = "variant"
_c = Click.__table__.c


def _after_cut(table, rows=None):
    """Campaigns joined to the rows of ``table`` (held by the FROM ``rows``)
    created at or after each campaign's cut."""
    cp, s, t = Campaign.__table__.c, RollupState.__table__.c, table.c
    cut = func.coalesce(s.rolled_until, literal(EPOCH, RollupState.rolled_until.type))
    return Campaign.__table__.outerjoin(RollupState.__table__, s.campaign_id == cp.id).join(
        table if rows is None else rows, and_(t.campaign_id == cp.id, t.created_at >= cut)
    )


def click_totals(campaigns, *, kind: str | None = None, confirmed: bool = False) -> Subquery:
    """``(campaign_id, kind, clicks, firsts[, confirmed])``, a row per
    campaign and kind; ``confirmed`` reads the 15-minute rollup, which has
    it, else the variant rollup is read."""
    dialect = dialect_name()
    if confirmed:
        r = ClickRollup.__table__.c
        rolled = select(r.campaign_id, r.bucket, r.kind, r.clicks, r.firsts, r.confirmed)
        live = click_buckets_query(dialect, _c.campaign_id)
        counters: tuple[str, ...] = ("clicks", "firsts", "confirmed")
    else:
        r = ClickDimensionRollup.__table__.c
        rolled = select(r.campaign_id, r.value, r.kind, r.clicks, r.firsts).where(r.dimension == _DIMENSION)
        live = click_dimension_query(_DIMENSION, None, dialect, _c.campaign_id)
        counters = ("clicks", "firsts")
    rolled = rolled.where(r.campaign_id.in_(select(Campaign.id).where(campaigns)))
    live = live.select_from(_after_cut(Click.__table__)).where(campaigns)
    if kind is not None:
        rolled, live = rolled.where(r.kind == kind), live.where(_c.kind == kind)
    u = rolled.union_all(live).subquery()
    return (
        select(u.c.campaign_id, u.c.kind, *(func.sum(u.c[n]).label(n) for n in counters))
        .group_by(u.c.campaign_id, u.c.kind)
        .subquery("click_totals")
    )


def conversion_totals(campaigns) -> Subquery:
    """``(campaign_id, currency, conversions, revenue)``, a row per campaign
    and currency (``""`` for none)."""
    r = ConversionRollup.__table__.c
    rolled = select(r.campaign_id, r.value, r.currency, r.conversions, r.revenue).where(
        r.dimension == _DIMENSION, r.campaign_id.in_(select(Campaign.id).where(campaigns))
    )
    live = (
        conversion_dimension_query(_DIMENSION, dialect_name(), Conversion.__table__.c.campaign_id)
        .select_from(_after_cut(Conversion.__table__, CONVERSIONS_AND_CLICKS))
        .where(campaigns)
    )
    u = rolled.union_all(live).subquery()
    return (
        select(
            u.c.campaign_id,
            u.c.currency,
            func.sum(u.c.conversions).label("conversions"),
            func.sum(u.c.revenue).label("revenue"),
        )
        .group_by(u.c.campaign_id, u.c.currency)
        .subquery("conversion_totals")
    )
