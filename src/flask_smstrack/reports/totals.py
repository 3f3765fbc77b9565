"""The headline counts of many campaigns at once: one statement for all
of them, grouped by campaign, rollup plus the live rows after each
campaign's cut, as :class:`~.rollup_reads.CampaignCounts` adds them for one.

Each function returns a subquery over every campaign matching a condition
on :class:`Campaign`, to join or to read. The aggregates are the rollups'
own (see rollup_queries.py). Every click and conversion has exactly one value in
each dimension (``""`` when unknown), so the rows of any one dimension add
up to a campaign's totals: these read the variant dimension, which has the
fewest rows. Only the 15-minute click rollup counts human-confirmed clicks.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Select, Subquery, and_, func, literal, select, true

from ..models import Campaign, Click, ClickDimensionRollup, ClickRollup, Conversion, ConversionRollup, RollupState
from .rollup_queries import (
    CONVERSION_COUNTERS,
    CONVERSIONS_AND_CLICKS,
    EPOCH,
    click_buckets_query,
    click_dimension_query,
    conversion_dimension_query,
    dialect_name,
)

_DIMENSION = "variant"
_NEVER = dt.datetime(9999, 1, 1, tzinfo=dt.timezone.utc)
_c = Click.__table__.c


def campaign_scope(campaigns):
    """The condition on :class:`Campaign`, and the same on a ``campaign_id``
    column: ``campaigns`` is a condition, or a list of ids (read by index)."""
    if isinstance(campaigns, (list, tuple)):
        ids = list(campaigns)
        return Campaign.id.in_(ids), lambda column: column.in_(ids)
    return campaigns, lambda column: column.in_(select(Campaign.id).where(campaigns))


def _live(campaigns, aggregate, table, rows=None) -> Select:
    """``aggregate`` (a builder taking the leading columns) over the rows of
    ``table`` (held by the FROM ``rows``) created at or after each
    campaign's cut, with the campaign's id first."""
    cp, s, t = Campaign.__table__.c, RollupState.__table__.c, table.c
    cut = func.coalesce(s.rolled_until, literal(EPOCH, RollupState.rolled_until.type))
    with_cut = Campaign.__table__.outerjoin(RollupState.__table__, s.campaign_id == cp.id)
    after = and_(t.campaign_id == cp.id, t.created_at >= cut)
    if dialect_name() == "postgresql":
        # One index range scan per campaign. PostgreSQL cannot tell how few
        # rows are after a cut: it would guess a third of the table, read it
        # whole and compile the query (JIT). Given a range (up to a date no
        # row reaches), it guesses a narrow one.
        after = and_(after, t.created_at < literal(_NEVER, RollupState.rolled_until.type))
        each = aggregate().select_from(table if rows is None else rows).where(after).lateral("live")
        return select(cp.id, *each.c).select_from(with_cut.join(each, true())).where(campaigns)
    return aggregate(t.campaign_id).select_from(with_cut.join(table if rows is None else rows, after)).where(campaigns)


def click_totals(campaigns, *, kind: str | None = None, confirmed: bool = False) -> Subquery:
    """``(campaign_id, kind, clicks, firsts[, confirmed])``, a row per
    campaign and kind; ``confirmed`` reads the 15-minute rollup, which has
    it, else the variant rollup is read."""
    dialect = dialect_name()
    campaigns, in_scope = campaign_scope(campaigns)
    if confirmed:
        r = ClickRollup.__table__.c
        rolled = select(r.campaign_id, r.bucket, r.kind, r.clicks, r.firsts, r.confirmed)
        counters: tuple[str, ...] = ("clicks", "firsts", "confirmed")

        def aggregate(*by):
            query = click_buckets_query(dialect, *by)
            return query if kind is None else query.where(_c.kind == kind)
    else:
        r = ClickDimensionRollup.__table__.c
        rolled = select(r.campaign_id, r.value, r.kind, r.clicks, r.firsts).where(r.dimension == _DIMENSION)
        counters = ("clicks", "firsts")

        def aggregate(*by):
            query = click_dimension_query(_DIMENSION, None, dialect, *by)
            return query if kind is None else query.where(_c.kind == kind)
    rolled = rolled.where(in_scope(r.campaign_id))
    if kind is not None:
        rolled = rolled.where(r.kind == kind)
    live = _live(campaigns, aggregate, Click.__table__)
    u = rolled.union_all(live).subquery()
    return (
        select(u.c.campaign_id, u.c.kind, *(func.sum(u.c[n]).label(n) for n in counters))
        .group_by(u.c.campaign_id, u.c.kind)
        .subquery("click_totals")
    )


def conversion_totals(campaigns) -> Subquery:
    """``(campaign_id, currency, *CONVERSION_COUNTERS)``, a row per campaign
    and currency (``""`` for none)."""
    campaigns, in_scope = campaign_scope(campaigns)
    r = ConversionRollup.__table__.c
    rolled = select(r.campaign_id, r.value, r.currency, *(r[n] for n in CONVERSION_COUNTERS)).where(
        r.dimension == _DIMENSION, in_scope(r.campaign_id)
    )
    dialect = dialect_name()
    live = _live(
        campaigns,
        lambda *by: conversion_dimension_query(_DIMENSION, dialect, *by),
        Conversion.__table__,
        CONVERSIONS_AND_CLICKS,
    )
    u = rolled.union_all(live).subquery()
    return (
        select(u.c.campaign_id, u.c.currency, *(func.sum(u.c[n]).label(n) for n in CONVERSION_COUNTERS))
        .group_by(u.c.campaign_id, u.c.currency)
        .subquery("conversion_totals")
    )
