"""Keeping the conversion rollups exact when a stored conversion changes:
a verified record upgrading an unverified one, or a refund.

A change runs in one transaction: :func:`lock_campaigns` takes the rollup
lock of every campaign the conversion belongs to before or after it (a
refresh waits for it), :func:`shift_conversion` takes the conversion's share
out of the rollups, the row changes, and :func:`shift_conversion` puts its
new share back; each share is read with the rollups' own aggregate query,
so a number means the same rolled up or not. A conversion after its
campaign's cut is in no rollup, and shifting it changes nothing.

Clicks shift the same way (:func:`shift_clicks`): a click written late from
the spool is added to the rollups it belongs in, and :func:`unroll` takes
a range of rows back out, so that what a purge deleted is never rebuilt.
"""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import and_, delete, literal, select, true, update

from ..models import Campaign, Click, ClickDimensionRollup, ClickRollup, Conversion, ConversionRollup, RollupState
from .rollup_queries import (
    CONVERSION_COUNTERS,
    CONVERSION_DIMENSIONS,
    CONVERSIONS_AND_CLICKS,
    DIMENSIONS,
    EPOCH,
    _add_into,
    click_buckets_query,
    click_dimension_query,
    conversion_dimension_query,
    dialect_insert,
)

_v = Conversion.__table__.c
_c = Click.__table__.c
_s = RollupState.__table__.c
_KEYS = ("campaign_id", "dimension", "value", "currency")


def lock_campaigns(session, campaign_ids: Iterable[int | None]) -> list[int]:
    """Take the rollup lock of these campaigns for ``session``'s transaction,
    in id order; returns the ids locked.

    A campaign without rollups yet gets its state row (nothing rolled up),
    so that a refresh starting meanwhile waits for this transaction instead
    of rolling up the row as it was before the change.
    """
    ids = sorted({i for i in campaign_ids if i is not None})
    if not ids:
        return ids
    dialect = session.get_bind().dialect.name
    cp = Campaign.__table__.c
    session.execute(
        dialect_insert(dialect)(RollupState.__table__)
        .from_select(
            ["campaign_id", "rolled_until", "sent_at"],
            select(cp.id, literal(EPOCH, RollupState.rolled_until.type), cp.sent_at).where(cp.id.in_(ids)),
        )
        .on_conflict_do_nothing()
    )
    if dialect == "postgresql":
        session.execute(select(_s.campaign_id).where(_s.campaign_id.in_(ids)).order_by(_s.campaign_id).with_for_update())
    else:
        session.execute(update(RollupState).where(_s.campaign_id.in_(ids)).values(rolled_until=_s.rolled_until))
    return ids


def _shift(session, model, query, keys: tuple[str, ...], counters: tuple[str, ...], sign: int) -> None:
    share = query.subquery()
    signed = select(*(share.c[k] for k in keys), *(share.c[n] * sign for n in counters)).where(true())
    _add_into(model, signed, keys, counters, session.get_bind().dialect.name, session)


def shift_conversions(session, condition, sign: int) -> None:
    """Add (``sign=1``) or take out (``sign=-1``) the shares of the
    conversions matching ``condition`` that are rolled up (created before
    their campaign's cut). Call under :func:`lock_campaigns`."""
    dialect = session.get_bind().dialect.name
    rolled = RollupState.__table__.join(
        CONVERSIONS_AND_CLICKS, and_(_v.campaign_id == _s.campaign_id, _v.created_at < _s.rolled_until)
    )
    for dimension in CONVERSION_DIMENSIONS:
        query = conversion_dimension_query(dimension, dialect, _s.campaign_id, named=True)
        _shift(session, ConversionRollup, query.select_from(rolled).where(condition), _KEYS, CONVERSION_COUNTERS, sign)


def shift_conversion(session, conversion_id: int, sign: int) -> None:
    """Add or take out one conversion's share of its campaign's rollups, if
    it is rolled up. Call under :func:`lock_campaigns`."""
    shift_conversions(session, _v.id == conversion_id, sign)


def shift_clicks(session, condition, sign: int) -> None:
    """Add or take out the shares of the clicks matching ``condition`` that
    are before their campaign's cut. Call under :func:`lock_campaigns`."""
    dialect = session.get_bind().dialect.name
    rolled = RollupState.__table__.join(
        Click.__table__, and_(_c.campaign_id == _s.campaign_id, _c.created_at < _s.rolled_until)
    )
    _shift(
        session, ClickRollup,
        click_buckets_query(dialect, _s.campaign_id).select_from(rolled).where(condition),
        ("campaign_id", "bucket", "kind"), ("clicks", "firsts", "confirmed"), sign,
    )
    for dimension in (*DIMENSIONS, "send_delay"):
        query = click_dimension_query(dimension, _s.sent_at, dialect, _s.campaign_id, named=True)
        _shift(
            session, ClickDimensionRollup, query.select_from(rolled).where(condition),
            ("campaign_id", "dimension", "value", "kind"), ("clicks", "firsts"), sign,
        )


def drop_empty(session, campaign_ids: Iterable[int]) -> None:
    """Delete the rollup rows that no click or conversion is counted in any more."""
    session.execute(
        delete(ConversionRollup).where(
            ConversionRollup.campaign_id.in_(list(campaign_ids)), ConversionRollup.conversions == 0
        )
    )
    session.execute(delete(ClickRollup).where(ClickRollup.campaign_id.in_(list(campaign_ids)), ClickRollup.clicks == 0))
    session.execute(
        delete(ClickDimensionRollup).where(
            ClickDimensionRollup.campaign_id.in_(list(campaign_ids)), ClickDimensionRollup.clicks == 0
        )
    )


def unroll(session, campaign_id: int) -> None:
    """Move a campaign's cut back so that the next refresh rebuilds its
    rollups (after clicks written late, or a new send time): to the start
    when nothing was purged, else to where the purge stopped, taking the
    rows after it back out of the rollups and keeping what only the rollups
    still hold. Runs in the caller's transaction, which it locks."""
    lock_campaigns(session, [campaign_id])
    state = session.get(RollupState, campaign_id, populate_existing=True)
    sent_at = session.execute(select(Campaign.sent_at).where(Campaign.id == campaign_id)).scalar()
    if state.purged_until is None:
        for model in (ClickRollup, ClickDimensionRollup, ConversionRollup):
            session.execute(delete(model).where(model.campaign_id == campaign_id))
        if not state.unattributed:
            session.execute(delete(RollupState).where(RollupState.campaign_id == campaign_id))
            return
    else:
        # The shares are read against the state's send time, the one they
        # were added with.
        shift_clicks(session, and_(_c.campaign_id == campaign_id, _c.created_at >= state.purged_until), -1)
        shift_conversions(session, and_(_v.campaign_id == campaign_id, _v.created_at >= state.purged_until), -1)
        drop_empty(session, [campaign_id])
    session.execute(
        update(RollupState)
        .where(RollupState.campaign_id == campaign_id)
        .values(rolled_until=state.purged_until or EPOCH, sent_at=sent_at)
    )
