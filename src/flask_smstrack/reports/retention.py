"""Retention: deleting raw clicks and conversions once their counts are in
the rollups (``flask smstrack purge``), so that every report stays the same.

A purge first brings every campaign's rollups up to date, then, campaign by
campaign, deletes its conversions created before the purge's time (never
after the campaign's rollup cut), then its clicks, in batches of a few
thousand rows, each batch its own short transaction under the campaign's
rollup lock. What the reports read of these rows and the rollups do not
hold is kept first, in the same transaction:

- a recipient's first human click (its id, time, device and country) and
  whether they converted, for the audience (``smstrack_rollup_recipients``);
- conversions that named one of the campaign's clicks too late, counted on
  the campaign (``RollupState.unattributed``);
- for a conversion with an order id, or a verified one with revenue left to
  refund, its order id, amounts and trust (``smstrack_purged_conversions``):
  a replay of the order id stays a duplicate, and a refund gets a 409.

A click is kept while a conversion can still be attributed to it (within
the attribution window) and while a stored conversion is attributed to it
(the conversion's breakdowns read the click's device, country...); it goes
in a later purge. ``RollupState.purged_until`` records how far a campaign
was purged: a reset of its rollups never goes back before it.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import and_, case, delete, exists, func, literal, or_, select, true, update

from ..models import (
    Campaign,
    Click,
    Conversion,
    PurgedConversion,
    RecipientRollup,
    Refund,
    RollupState,
    utcnow,
)
from ..state import get_state
from .partition_purge import drop_old_partitions
from .rollup_edits import lock_campaigns
from .rollups import EPOCH, SETTLE, dialect_insert, dialect_name, refresh_many

#: Rows deleted per transaction.
BATCH_SIZE = 2000

_c = Click.__table__.c
_v = Conversion.__table__.c
_s = RollupState.__table__.c


@dataclass
class PurgeCount:
    """What a purge deletes (or would) of one campaign's rows."""

    #: ``None`` for the conversions attributed to no campaign.
    campaign_id: int | None
    name: str
    clicks: int = 0
    conversions: int = 0
    #: Clicks before the purge's time that stay: a stored conversion is
    #: attributed to them, or one still could be (attribution window).
    kept_clicks: int = 0


def purge_times(before: dt.datetime, attribution_days: int, now: dt.datetime | None = None) -> tuple:
    """``(conversions_until, clicks_until)``: rows created before these go.
    Never after the rollups' cut (two minutes ago); clicks not within the
    attribution window either."""
    now = now or utcnow()
    until = min(before, now - SETTLE)
    return until, min(until, now - dt.timedelta(days=attribution_days))


def _deletable_clicks(campaign_condition, clicks_until, until):
    """Clicks that go: before ``clicks_until`` and no conversion from
    ``until`` on (one that stays) is attributed to them."""
    later = exists().where(_v.click_pk == _c.id, _v.created_at >= until)
    return and_(campaign_condition, _c.created_at < clicks_until, ~later)


def plan(before: dt.datetime, attribution_days: int, now: dt.datetime | None = None) -> list[PurgeCount]:
    """What :func:`purge` would delete, per campaign (those with anything
    to delete or keep), then the unattributed conversions; changes nothing."""
    session = get_state().db.session
    until, clicks_until = purge_times(before, attribution_days, now)
    counts: dict[int | None, PurgeCount] = {}

    def count(cid):
        if cid not in counts:
            counts[cid] = PurgeCount(cid, "")
        return counts[cid]

    for cid, n in session.execute(
        select(_v.campaign_id, func.count()).where(_v.created_at < until).group_by(_v.campaign_id)
    ):
        count(cid).conversions = n
    gone = _deletable_clicks(true(), clicks_until, until)
    for cid, n, deleted in session.execute(
        select(_c.campaign_id, func.count(), func.sum(case((gone, 1), else_=0)))
        .where(_c.created_at < until)
        .group_by(_c.campaign_id)
    ):
        count(cid).clicks = int(deleted or 0)
        count(cid).kept_clicks = n - int(deleted or 0)
    ids = [i for i in counts if i is not None]
    names = dict(session.execute(select(Campaign.id, Campaign.name).where(Campaign.id.in_(ids))).all())
    for cid, row in counts.items():
        row.name = names.get(cid, "") if cid is not None else "(no campaign)"
    return sorted(counts.values(), key=lambda r: (r.campaign_id is None, r.campaign_id or 0))


def purge(
    before: dt.datetime,
    attribution_days: int,
    *,
    now: dt.datetime | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> list[PurgeCount]:
    """Delete the raw clicks and conversions created before ``before`` whose
    counts are in the rollups (see the module's doc); returns what went,
    per campaign, as :func:`plan` lists it."""
    session = get_state().db.session
    now = now or utcnow()
    refresh_many(true(), now=now)
    until, clicks_until = purge_times(before, attribution_days, now)
    counts = {row.campaign_id: row for row in plan(before, attribution_days, now)}
    done: list[PurgeCount] = []
    cuts = {}
    for cid in sorted(i for i in counts if i is not None):
        cuts[cid] = _purge_conversions(session, counts[cid], until, clicks_until, batch_size, progress)
    # PostgreSQL: whole months of clicks go at once (a partition dropped),
    # then the rows of the month the cut falls in, as everywhere.
    dropped = drop_old_partitions(session, cuts, keep_of_clicks)
    for cid in sorted(cuts):
        row = counts[cid]
        campaign_until, campaign_clicks_until = cuts[cid]
        row.clicks = dropped.get(cid, 0) + _delete_clicks(
            session, cid, campaign_clicks_until, campaign_until, batch_size, progress
        )
        row.kept_clicks = session.execute(
            select(func.count()).where(_c.campaign_id == cid, _c.created_at < campaign_until)
        ).scalar_one()
        done.append(row)
    if None in counts:
        row = counts[None]
        row.conversions = _delete_conversions(
            session, None, _v.campaign_id.is_(None), until, batch_size, progress
        )
        done.append(row)
    return done


def _purge_conversions(session, row: PurgeCount, until, clicks_until, batch_size, progress) -> tuple:
    """Mark the campaign purged and delete its conversions; returns the
    campaign's ``(until, clicks_until)``: never after its rollups' cut."""
    cid = row.campaign_id
    lock_campaigns(session, [cid])
    state = session.get(RollupState, cid, populate_existing=True)
    # Only what is rolled up goes; the purge mark is set before anything
    # is deleted, so that a reset meanwhile keeps the rollups below it.
    until = min(until, state.rolled_until)
    clicks_until = min(clicks_until, until)
    if state.purged_until is None or state.purged_until < until:
        session.execute(update(RollupState).where(_s.campaign_id == cid).values(purged_until=until))
    session.commit()
    row.conversions = _delete_conversions(session, cid, _v.campaign_id == cid, until, batch_size, progress)
    return until, clicks_until


def _batch(session, query, batch_size: int) -> list[int]:
    if dialect_name() == "postgresql":
        # A row a refund or an upgrade holds is left for the next purge.
        query = query.with_for_update(skip_locked=True)
    return list(session.execute(query.limit(batch_size)).scalars())


def _delete_conversions(session, cid, condition, until, batch_size, progress) -> int:
    deleted, last = 0, 0
    while True:
        if cid is not None:
            lock_campaigns(session, [cid])
        ids = _batch(
            session, select(_v.id).where(condition, _v.created_at < until, _v.id > last).order_by(_v.id), batch_size
        )
        if not ids:
            session.commit()
            return deleted
        last = ids[-1]
        _keep_of_conversions(session, cid, ids)
        session.execute(delete(Refund).where(Refund.conversion_id.in_(ids)))
        n = session.execute(delete(Conversion).where(_v.id.in_(ids))).rowcount
        session.commit()
        deleted += n
        if progress is not None:
            progress(n)


def _delete_clicks(session, cid, clicks_until, until, batch_size, progress) -> int:
    deleted, last = 0, 0
    while True:
        lock_campaigns(session, [cid])
        query = select(_c.id).where(_deletable_clicks(_c.campaign_id == cid, clicks_until, until), _c.id > last)
        ids = _batch(session, query.order_by(_c.id), batch_size)
        if not ids:
            session.commit()
            return deleted
        last = ids[-1]
        keep_of_clicks(session, cid, _c.id.in_(ids))
        n = session.execute(delete(Click).where(_c.id.in_(ids))).rowcount
        session.commit()
        deleted += n
        if progress is not None:
            progress(n)


def _count_unattributed(session, matched) -> None:
    """Add to each campaign's count the conversions that named one of its
    clicks too late and that ``matched`` (a condition on both) is about to
    delete one side of."""
    rows = session.execute(
        select(_c.campaign_id, func.count())
        .select_from(Conversion.__table__.join(Click.__table__, _v.reported_click_id == _c.click_id))
        .where(_v.click_pk.is_(None), matched)
        .group_by(_c.campaign_id)
    ).all()
    cp, table = Campaign.__table__.c, RollupState.__table__
    for campaign_id, n in rows:
        # Added to the state, or a new one (nothing rolled up yet): a reset
        # may have just deleted it.
        stmt = dialect_insert(dialect_name())(table).from_select(
            ["campaign_id", "rolled_until", "sent_at", "unattributed"],
            select(cp.id, literal(EPOCH, RollupState.rolled_until.type), cp.sent_at, literal(n)).where(
                cp.id == campaign_id
            ),
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c.campaign_id], set_={"unattributed": table.c.unattributed + stmt.excluded.unattributed}
            )
        )


def _keep_of_conversions(session, cid, ids: list[int]) -> None:
    dialect = dialect_name()
    insert = dialect_insert(dialect)
    p = PurgedConversion.__table__
    refundable = and_(
        _v.trust == "verified", _v.revenue.is_not(None), _v.currency.is_not(None), _v.refunded < _v.revenue
    )
    columns = ("id", "owner_id", "event", "order_id", "source", "campaign_id", "trust", "revenue", "currency",
               "refunded", "created_at")
    session.execute(
        insert(p)
        .from_select(
            [*columns, "purged_at"],
            select(*(_v[name] for name in columns), literal(utcnow(), PurgedConversion.purged_at.type)).where(
                _v.id.in_(ids), or_(_v.order_id.is_not(None), refundable)
            ),
        )
        .on_conflict_do_nothing()
    )
    if cid is not None:
        r = RecipientRollup.__table__
        stmt = insert(r).from_select(
            ["campaign_id", "recipient_id", "converted"],
            select(literal(cid), _v.recipient_id, literal(True))
            .where(_v.id.in_(ids), _v.recipient_id.is_not(None))
            .distinct(),
        )
        session.execute(
            stmt.on_conflict_do_update(index_elements=[r.c.campaign_id, r.c.recipient_id], set_={"converted": True})
        )
    _count_unattributed(session, _v.id.in_(ids))


def keep_of_clicks(session, cid: int, which) -> None:
    """Keep what the reports need of the campaign's clicks that ``which``
    (a condition on the clicks) is about to delete."""
    r = RecipientRollup.__table__
    firsts = (
        select(_c.recipient_id, func.min(_c.id).label("click_pk"))
        .where(which, _c.campaign_id == cid, _c.kind == "human", _c.recipient_id.is_not(None))
        .group_by(_c.recipient_id)
        .subquery()
    )
    stmt = dialect_insert(dialect_name())(r).from_select(
        ["campaign_id", "recipient_id", "click_pk", "clicked_at", "device_type", "country", "converted"],
        select(literal(cid), _c.recipient_id, _c.id, _c.created_at, _c.device_type, _c.country, literal(False))
        .select_from(Click.__table__.join(firsts, firsts.c.click_pk == _c.id))
        .where(true()),
    )
    new = stmt.excluded
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[r.c.campaign_id, r.c.recipient_id],
            set_={"click_pk": new.click_pk, "clicked_at": new.clicked_at, "device_type": new.device_type,
                  "country": new.country},
            where=or_(r.c.click_pk.is_(None), new.click_pk < r.c.click_pk),
        )
    )
    _count_unattributed(session, and_(which, _c.campaign_id == cid))
