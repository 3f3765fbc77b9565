"""Keeping the conversion rollups exact when a stored conversion changes:
a verified record upgrading an unverified one, or a refund.

A change runs in one transaction: :func:`lock_campaigns` takes the rollup
lock of every campaign the conversion belongs to before or after it (a
refresh waits for it), :func:`shift_conversion` takes the conversion's share
out of the rollups, the row changes, and :func:`shift_conversion` puts its
new share back; each share is read with the rollups' own aggregate query,
so a number means the same rolled up or not. A conversion after its
campaign's cut is in no rollup, and shifting it changes nothing.
"""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import and_, delete, literal, select, true, update

from ..models import Campaign, Conversion, ConversionRollup, RollupState
from .rollups import (
    CONVERSION_COUNTERS,
    CONVERSION_DIMENSIONS,
    CONVERSIONS_AND_CLICKS,
    EPOCH,
    _add_into,
    dialect_insert,
    conversion_dimension_query,
)

_v = Conversion.__table__.c
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


def shift_conversion(session, conversion_id: int, sign: int) -> None:
    """Add (``sign=1``) or take out (``sign=-1``) one conversion's share of
    its campaign's rollups, if it is rolled up. Call under
    :func:`lock_campaigns`."""
    dialect = session.get_bind().dialect.name
    rolled = RollupState.__table__.join(
        CONVERSIONS_AND_CLICKS, and_(_v.campaign_id == _s.campaign_id, _v.created_at < _s.rolled_until)
    )
    for dimension in CONVERSION_DIMENSIONS:
        share = (
            conversion_dimension_query(dimension, dialect, _s.campaign_id, named=True)
            .select_from(rolled)
            .where(_v.id == conversion_id)
            .subquery()
        )
        signed = select(*(share.c[k] for k in _KEYS), *(share.c[n] * sign for n in CONVERSION_COUNTERS)).where(true())
        _add_into(ConversionRollup, signed, _KEYS, CONVERSION_COUNTERS, dialect, session)


def drop_empty(session, campaign_ids: Iterable[int]) -> None:
    """Delete the rollup rows that no conversion is counted in any more."""
    session.execute(
        delete(ConversionRollup).where(
            ConversionRollup.campaign_id.in_(list(campaign_ids)), ConversionRollup.conversions == 0
        )
    )
