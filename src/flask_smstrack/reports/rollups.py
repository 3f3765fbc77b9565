"""Pre-aggregated counts, so a campaign with a million clicks reports in
milliseconds, with exact numbers.

Each campaign has a cut, ``rolled_until``: clicks and conversions created
before it are summed into the rollup tables, those after it are counted live
from the raw rows (through the ``(campaign_id, created_at)`` indexes, see
rollup_reads.py). Reports only read: :func:`catch_up`, a job, moves the cuts
forward to two minutes ago and adds what they pass. It runs after imports,
spool replays and demo seeding (:func:`start_catch_up` enqueues it by name,
:data:`CATCH_UP_JOB`), periodically in the worker, and from
``flask smstrack rollups``. Both sides
come from the same aggregate queries (rollup_queries.py), so a number means
the same whether it was rolled up or not.

The one change to a click after it is written, the landing ping that marks
it human-confirmed, adjusts the rollup too. Clicks written late from the
spool are added to the rollups they belong in (see rollup_edits.py).

A purge (retention.py) deletes raw rows before ``purged_until``: from then
on the rollups are all that is left of them, so nothing rebuilds a purged
campaign from the start. A reset (a new send time) moves its cut back to
``purged_until`` only, taking the rows after it out first.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Integer, and_, any_, bindparam, case, delete, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from ..models import (
    Campaign,
    Click,
    ClickDimensionRollup,
    ClickRollup,
    ConversionRollup,
    RollupState,
    utcnow,
)
from ..state import enqueue, get_state
from .rollup_queries import (  # noqa: F401  (the names other modules read from here)
    BUCKET_SECONDS,
    CONVERSION_COUNTERS,
    CONVERSION_DIMENSIONS,
    CONVERSIONS_AND_CLICKS,
    DELAY_BOUNDS,
    DELAY_LABELS,
    DIMENSIONS,
    EPOCH,
    SETTLE,
    _add_into,
    _c,
    _v,
    aggregate_click_buckets,
    aggregate_click_dimension,
    aggregate_conversion_dimension,
    bucket_of,
    click_buckets_query,
    click_dimension_query,
    conversion_dimension_query,
    dialect_insert,
    dialect_name,
)
from .rollup_reads import CampaignCounts, state_for  # noqa: F401

#: Campaigns one catch-up statement covers: the same few statements for
#: each batch, whatever its size; a batch's locks are held until it commits.
CATCH_UP_BATCH = 200
#: The job's name, for :func:`flask_smstrack.state.enqueue`.
CATCH_UP_JOB = "flask_smstrack.reports.rollups:catch_up"

logger = logging.getLogger("flask_smstrack")


def refresh(campaign: Campaign, now: dt.datetime | None = None) -> bool:
    """Move the campaign's cut to two minutes ago, rolling up what it passes.

    Safe to run from several processes. Returns whether this call moved the cut.
    """
    return refresh_many(Campaign.id == campaign.id, now=now) > 0


def refresh_many(campaigns, *, now: dt.datetime | None = None, refresh_after: dt.timedelta = dt.timedelta(0)) -> int:
    """Bring the rollups of every campaign matching ``campaigns`` (a
    condition on :class:`Campaign`) up to date: those whose cut is older
    than ``refresh_after`` move it to two minutes ago, adding what it passes.

    The work is set-based, in the same few statements for one campaign or
    ten thousand: one that finds what needs doing (nothing, usually), and
    when something does, a reset of the campaigns whose send time changed,
    the missing states, then in one transaction the lock on the states to
    move, one ``INSERT ... SELECT`` per rollup and dimension, and the move.

    Safe to run from several processes: the states moved are locked first
    (in id order), and a state that another process moved meanwhile no
    longer qualifies. Returns how many cuts this call moved.
    """
    session = get_state().db.session
    dialect = dialect_name()
    until = (now or utcnow()) - SETTLE
    stale_before = until - refresh_after
    s, cp = RollupState.__table__.c, Campaign.__table__.c
    with_state = Campaign.__table__.outerjoin(RollupState.__table__, s.campaign_id == cp.id)
    changed = and_(s.campaign_id.is_not(None), s.sent_at.is_distinct_from(cp.sent_at))
    missing, reset_n, stale = session.execute(
        select(
            func.sum(case((s.campaign_id.is_(None), 1), else_=0)),
            func.sum(case((changed, 1), else_=0)),
            func.sum(case((s.rolled_until < stale_before, 1), else_=0)),
        )
        .select_from(with_state)
        .where(campaigns)
    ).one()
    if not (missing or reset_n or stale):
        return 0
    if reset_n:
        # The send time moved: the delay bins are wrong, build them again.
        from .rollup_edits import unroll

        keeps = or_(s.purged_until.is_not(None), s.unattributed != 0)
        kept = session.execute(select(s.campaign_id).select_from(with_state).where(campaigns, changed, keeps)).all()
        to_reset = select(s.campaign_id).select_from(with_state).where(campaigns, changed, ~keeps)
        for model in (ClickRollup, ClickDimensionRollup, ConversionRollup, RollupState):
            session.execute(delete(model).where(model.campaign_id.in_(to_reset)))
        for (campaign_id,) in kept:
            unroll(session, campaign_id)
    if missing or reset_n:
        session.execute(
            dialect_insert(dialect)(RollupState.__table__)
            .from_select(
                ["campaign_id", "rolled_until", "sent_at"],
                select(cp.id, literal(EPOCH, RollupState.rolled_until.type), cp.sent_at)
                .select_from(with_state)
                .where(campaigns, s.campaign_id.is_(None)),
            )
            .on_conflict_do_nothing()
        )
        session.commit()

    due = and_(s.campaign_id.in_(select(cp.id).where(campaigns)), s.rolled_until < stale_before)
    floor = EPOCH
    if dialect == "postgresql":
        locked = session.execute(
            select(s.campaign_id, s.rolled_until).where(due).order_by(s.campaign_id).with_for_update()
        ).all()
        ids = [cid for cid, _ in locked]
        chosen = s.campaign_id == any_(bindparam("ids", ids, type_=ARRAY(Integer)))
        # The earliest cut, as a constant: PostgreSQL then sees how few rows
        # a refresh adds, and reads them by index.
        floor = min((cut for _, cut in locked), default=EPOCH)
    else:
        # SQLite has one writer: once this holds the write lock, ``due``
        # names the same states until the commit.
        ids = range(session.execute(update(RollupState).where(due).values(rolled_until=s.rolled_until)).rowcount)
        chosen = due
    if not ids:
        session.rollback()
        return 0

    def after_cut(t):
        return and_(t.campaign_id == s.campaign_id, t.created_at >= s.rolled_until, t.created_at >= floor,
                    t.created_at < until)

    clicks = RollupState.__table__.join(Click.__table__, after_cut(_c))
    conversions = RollupState.__table__.join(CONVERSIONS_AND_CLICKS, after_cut(_v))
    _add_into(
        ClickRollup,
        click_buckets_query(dialect, s.campaign_id).select_from(clicks).where(chosen),
        ("campaign_id", "bucket", "kind"),
        ("clicks", "firsts", "confirmed"),
        dialect,
    )
    for dimension in (*DIMENSIONS, "send_delay"):
        query = click_dimension_query(dimension, s.sent_at, dialect, s.campaign_id, named=True)
        _add_into(
            ClickDimensionRollup,
            query.select_from(clicks).where(chosen),
            ("campaign_id", "dimension", "value", "kind"),
            ("clicks", "firsts"),
            dialect,
        )
    for dimension in CONVERSION_DIMENSIONS:
        query = conversion_dimension_query(dimension, dialect, s.campaign_id, named=True)
        _add_into(
            ConversionRollup,
            query.select_from(conversions).where(chosen),
            ("campaign_id", "dimension", "value", "currency"),
            CONVERSION_COUNTERS,
            dialect,
        )
    moved = session.execute(update(RollupState).where(chosen).values(rolled_until=until)).rowcount
    session.commit()
    return moved


def reset(campaign_id: int) -> None:
    """Forget a campaign's rollups; the next refresh rebuilds them (from
    where a purge stopped, if one did: see :func:`.rollup_edits.unroll`)."""
    from .rollup_edits import unroll

    session = get_state().db.session
    unroll(session, campaign_id)
    session.commit()


def confirm_in_rollup(click: Any) -> None:
    """Count a newly confirmed click in the rollup, if it was rolled up.

    Runs inside the caller's transaction, after locking the state row, so a
    refresh cannot roll the click up in between.
    """
    session = get_state().db.session
    state = state_for(click.campaign_id)
    if state is None or click.created_at >= state.rolled_until:
        return
    session.execute(
        update(ClickRollup)
        .where(
            ClickRollup.campaign_id == click.campaign_id,
            ClickRollup.bucket == bucket_of(click.created_at),
            ClickRollup.kind == click.kind,
        )
        .values(confirmed=ClickRollup.confirmed + 1)
    )


def lock_state(campaign_id: int) -> None:
    """Take the campaign's rollup lock for the current transaction."""
    get_state().db.session.execute(
        update(RollupState)
        .where(RollupState.campaign_id == campaign_id)
        .values(rolled_until=RollupState.rolled_until)
    )




def catch_up(
    campaign_ids: Iterable[int] | None = None,
    *,
    now: dt.datetime | None = None,
    progress: Callable[[int], Any] | None = None,
) -> int:
    """Bring the rollups of these campaigns (default: all) up to date: the
    job reports rely on, so that a page view never builds them.

    Idempotent, and safe to run from several processes at once: each batch
    of :data:`CATCH_UP_BATCH` campaigns is one :func:`refresh_many`, which
    takes the campaigns' rollup locks in id order and skips what another run
    moved meanwhile. ``progress`` is called with the number of campaigns of
    each batch done. Returns how many cuts this run moved.
    """
    session = get_state().db.session
    query = select(Campaign.id).order_by(Campaign.id)
    if campaign_ids is not None:
        wanted = sorted({int(i) for i in campaign_ids})
        if not wanted:
            return 0
        query = query.where(Campaign.id.in_(wanted))
    ids = list(session.execute(query).scalars())
    session.commit()  # no transaction left open while the batches lock
    moved = 0
    for start in range(0, len(ids), CATCH_UP_BATCH):
        batch = ids[start : start + CATCH_UP_BATCH]
        moved += refresh_many(Campaign.id.in_(batch), now=now)
        if progress is not None:
            progress(len(batch))
    return moved


def start_catch_up(campaign_ids: Iterable[int] | None = None) -> None:
    """Start :func:`catch_up` of these campaigns (default: all) after rows
    arrived in bulk: in the worker, or now when there is none. A failure is
    logged, never raised: the rows are stored, reports count them live
    meanwhile, and the next catch-up rolls them up."""
    try:
        enqueue(CATCH_UP_JOB, None if campaign_ids is None else sorted(set(campaign_ids)))
    except Exception:
        get_state().db.session.rollback()
        logger.exception("rollups: could not start the catch-up of campaigns %s", campaign_ids or "(all)")
