"""Pre-aggregated counts, so a campaign with a million clicks reports in
milliseconds, with exact numbers.

Each campaign has a cut, ``rolled_until``: clicks and conversions created
before it are summed into the rollup tables, those after it are counted live
from the raw rows (through the ``(campaign_id, created_at)`` indexes). A
refresh moves the cut forward to two minutes ago and adds what it passed.
Both sides come from the same aggregate queries below, so a number means the
same whether it was rolled up or not.

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
from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, Select, String, and_, any_, bindparam, case, cast, delete, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..models import (
    Campaign,
    Click,
    ClickDimensionRollup,
    ClickRollup,
    Conversion,
    ConversionRollup,
    RollupState,
    utcnow,
)
from ..state import get_state

BUCKET_SECONDS = 900
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
#: Rows this recent are left to the live side: a click or conversion
#: committed late (a slow transaction, clocks apart) is still counted.
SETTLE = dt.timedelta(minutes=2)
#: A report refreshes the rollups it reads once their cut is this much older
#: than SETTLE: a minute of live rows is cheap to count.
REFRESH_AFTER = dt.timedelta(minutes=1)

_c = Click.__table__.c
_v = Conversion.__table__.c

#: Breakdown dimensions: name -> click column.
DIMENSIONS: dict[str, Any] = {
    "link": _c.link_id,
    "variant": _c.variant_id,
    "device_type": _c.device_type,
    "os": _c.os,
    "browser": _c.browser,
    "country": _c.country,
    "referrer_host": _c.referrer_host,
}

#: Upper bounds of the delay bins, in minutes (``None``: no bound).
DELAY_BOUNDS = (5, 15, 60, 180, 720, 1440, 2880, 10080, None)
#: Labels of the delay bins of DELAY_BOUNDS, one each.
DELAY_LABELS = (
    "under 5 min",
    "5–15 min",
    "15–60 min",
    "1–3 h",
    "3–12 h",
    "12–24 h",
    "1–2 days",
    "2–7 days",
    "over 7 days",
)
assert len(DELAY_LABELS) == len(DELAY_BOUNDS)


def dialect_name() -> str:
    return get_state().db.session.get_bind().dialect.name


def _epoch(column, dialect: str):
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), Integer)
    return cast(func.strftime("%s", column), Integer)


def _bucket(column, dialect: str):
    # Integer division: floor for the positive epochs of our timestamps.
    return (_epoch(column, dialect) // BUCKET_SECONDS) * BUCKET_SECONDS


def _delay_bin(later, earlier, dialect: str):
    """The index of the delay bin of ``later - earlier`` (a SQL CASE)."""
    seconds = _epoch(later, dialect) - _epoch(earlier, dialect)
    whens = [(seconds < bound * 60, literal(str(i))) for i, bound in enumerate(DELAY_BOUNDS) if bound]
    return case(*whens, else_=literal(str(len(DELAY_BOUNDS) - 1)))


def bucket_of(moment: dt.datetime) -> int:
    return int(moment.timestamp()) // BUCKET_SECONDS * BUCKET_SECONDS


def _range(column, campaign_column, campaign_id: int, since, until):
    conditions = [campaign_column == campaign_id]
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column < until)
    return and_(*conditions)


def _text(column):
    """A dimension value as stored in the rollups: a string, ``""`` for none."""
    return func.coalesce(cast(column, String), literal(""))


# -- the aggregates -------------------------------------------------------------
#
# Each is built once, below, and read two ways: per campaign over a time
# range (the live side of a report), and grouped by campaign over every row
# after each campaign's cut (a refresh adding them to the rollups).


def click_buckets_query(dialect: str, *by) -> Select:
    """``(*by, bucket, kind, clicks, firsts, confirmed)`` grouped; add a WHERE."""
    bucket = _bucket(_c.created_at, dialect).label("bucket")
    return select(
        *by,
        bucket,
        _c.kind,
        func.count().label("clicks"),
        func.sum(case((_c.is_first, 1), else_=0)).label("firsts"),
        func.sum(case((_c.human_confirmed, 1), else_=0)).label("confirmed"),
    ).group_by(*by, bucket, _c.kind)


def _named(by: tuple, dimension: str, named: bool) -> list:
    """The leading columns: ``by``, then the dimension's name if ``named``."""
    return [*by, literal(dimension).label("dimension")] if named else list(by)


def click_dimension_query(dimension: str, sent_at, dialect: str, *by, named: bool = False) -> Select:
    """``(*by, [dimension,] value, kind, clicks, firsts)`` grouped; add a WHERE.
    ``sent_at`` is the campaign's send time (a value or a column), for
    ``send_delay``."""
    if dimension == "send_delay":
        column = _delay_bin(_c.created_at, sent_at, dialect)
    else:
        column = DIMENSIONS[dimension]
    value = _text(column).label("value")
    query = select(
        *_named(by, dimension, named), value, _c.kind,
        func.count().label("clicks"), func.sum(case((_c.is_first, 1), else_=0)).label("firsts"),
    ).group_by(*by, value, _c.kind)
    if dimension == "send_delay":
        # Whole seconds, as the bins count them; and not a bound SQLite
        # would read the clicks' index from (the cut is the one to use).
        query = query.where(sent_at.is_not(None), _epoch(_c.created_at, dialect) >= _epoch(sent_at, dialect))
    return query


CONVERSION_DIMENSIONS = ("bucket", "click_delay", *DIMENSIONS)


#: What the conversion rollups count, per dimension value and currency: the
#: verified conversions among all, and the refunds (of verified ones).
CONVERSION_COUNTERS = ("conversions", "revenue", "verified", "verified_revenue", "refunded")


def conversion_dimension_query(dimension: str, dialect: str, *by, named: bool = False) -> Select:
    """``(*by, [dimension,] value, currency, *CONVERSION_COUNTERS)`` of
    attributed conversions, grouped; add the FROM (conversions outer join
    clicks) and a WHERE."""
    if dimension == "bucket":
        column = _bucket(_v.created_at, dialect)
    elif dimension == "click_delay":
        column = _delay_bin(_v.created_at, _c.created_at, dialect)
    else:
        column = DIMENSIONS[dimension]
    value = _text(column).label("value")
    # A conversion without revenue (a sign-up) counts under "" even when it
    # named a currency, so the conversions of a currency are its orders.
    currency = case((_v.revenue.is_(None), literal("")), else_=func.coalesce(_v.currency, literal(""))).label(
        "currency"
    )
    verified = _v.trust == "verified"

    def total(amount):
        return func.coalesce(func.sum(amount), literal(0, Conversion.revenue.type))

    return select(
        *_named(by, dimension, named), value, currency, func.count().label("conversions"),
        total(_v.revenue).label("revenue"),
        func.sum(case((verified, 1), else_=0)).label("verified"),
        total(case((verified, _v.revenue))).label("verified_revenue"),
        total(_v.refunded).label("refunded"),
    ).group_by(*by, value, currency)


CONVERSIONS_AND_CLICKS = Conversion.__table__.outerjoin(Click.__table__, _v.click_pk == _c.id)


def aggregate_click_buckets(campaign_id: int, since=None, until=None) -> list[tuple]:
    """``(bucket, kind, clicks, firsts, confirmed)`` rows."""
    query = click_buckets_query(dialect_name()).where(_range(_c.created_at, _c.campaign_id, campaign_id, since, until))
    return [(int(b), k, n, int(f or 0), int(h or 0)) for b, k, n, f, h in get_state().db.session.execute(query)]


def aggregate_click_dimension(campaign_id: int, dimension: str, sent_at=None, since=None, until=None) -> list[tuple]:
    """``(value, kind, clicks, firsts)`` rows; ``value`` is a string, ``""`` for none."""
    if dimension == "send_delay" and sent_at is None:
        return []
    sent = literal(sent_at, type_=Click.created_at.type) if sent_at is not None else None
    query = click_dimension_query(dimension, sent, dialect_name()).where(
        _range(_c.created_at, _c.campaign_id, campaign_id, since, until)
    )
    return [(str(value), k, n, int(f or 0)) for value, k, n, f in get_state().db.session.execute(query)]


def _counts(row) -> tuple:
    """Conversion counters as Python numbers: counts ``int``, money ``Decimal``."""
    n, revenue, verified, verified_revenue, refunded = row
    return int(n), Decimal(revenue or 0), int(verified or 0), Decimal(verified_revenue or 0), Decimal(refunded or 0)


def aggregate_conversion_dimension(campaign_id: int, dimension: str, since=None, until=None) -> list[tuple]:
    """``(value, currency, *CONVERSION_COUNTERS)`` rows of attributed conversions."""
    query = (
        conversion_dimension_query(dimension, dialect_name())
        .select_from(CONVERSIONS_AND_CLICKS)
        .where(_range(_v.created_at, _v.campaign_id, campaign_id, since, until))
    )
    return [(str(value), currency, *_counts(rest)) for value, currency, *rest in get_state().db.session.execute(query)]


# -- keeping the rollups ------------------------------------------------------


def dialect_insert(dialect: str):
    """The dialect's INSERT, which has ``on_conflict_do_...``."""
    return pg_insert if dialect == "postgresql" else sqlite_insert


def _add_into(model, query: Select, keys: tuple[str, ...], counters: tuple[str, ...], dialect: str, session=None) -> None:
    """``INSERT INTO model SELECT ...``, adding to the rows already there."""
    table = model.__table__
    stmt = dialect_insert(dialect)(table).from_select([*keys, *counters], query)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c[k] for k in keys],
        set_={c: table.c[c] + stmt.excluded[c] for c in counters},
    )
    (session or get_state().db.session).execute(stmt)


def _state_for(campaign_id: int) -> RollupState | None:
    return get_state().db.session.get(RollupState, campaign_id, populate_existing=True)


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
    state = _state_for(click.campaign_id)
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


# -- reading: rollup plus the live rows after the cut -----------------------


class CampaignCounts:
    """A campaign's aggregates, rollup and live rows added together."""

    def __init__(self, campaign: Campaign, *, refresh_after: dt.timedelta | None = REFRESH_AFTER) -> None:
        self.campaign = campaign
        state = _state_for(campaign.id)
        if refresh_after is not None and (
            state is None
            or state.sent_at != campaign.sent_at
            or state.rolled_until < utcnow() - SETTLE - refresh_after
        ):
            refresh(campaign)
            state = _state_for(campaign.id)
        self.cut = state.rolled_until if state is not None else None

    def click_buckets(self) -> list[tuple]:
        """``(bucket_start, kind, clicks, firsts, confirmed)``, ``bucket_start`` aware UTC."""
        totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
        session = get_state().db.session
        if self.cut is not None:
            for r in session.execute(
                select(ClickRollup.bucket, ClickRollup.kind, ClickRollup.clicks, ClickRollup.firsts, ClickRollup.confirmed)
                .where(ClickRollup.campaign_id == self.campaign.id)
            ):
                t = totals[(r[0], r[1])]
                t[0] += r[2]; t[1] += r[3]; t[2] += r[4]  # noqa: E702
        for b, k, n, f, h in aggregate_click_buckets(self.campaign.id, self.cut):
            t = totals[(b, k)]
            t[0] += n; t[1] += f; t[2] += h  # noqa: E702
        return [
            (dt.datetime.fromtimestamp(b, dt.timezone.utc), k, *v) for (b, k), v in sorted(totals.items())
        ]

    def click_dimension(self, dimension: str) -> list[tuple]:
        """``(value, kind, clicks, firsts)``; ``value`` a string, ``""`` for none."""
        totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        if self.cut is not None:
            for value, k, n, f in get_state().db.session.execute(
                select(ClickDimensionRollup.value, ClickDimensionRollup.kind, ClickDimensionRollup.clicks, ClickDimensionRollup.firsts)
                .where(ClickDimensionRollup.campaign_id == self.campaign.id, ClickDimensionRollup.dimension == dimension)
            ):
                t = totals[(value, k)]
                t[0] += n; t[1] += f  # noqa: E702
        for value, k, n, f in aggregate_click_dimension(self.campaign.id, dimension, self.campaign.sent_at, self.cut):
            t = totals[(value, k)]
            t[0] += n; t[1] += f  # noqa: E702
        return [(value, k, *v) for (value, k), v in totals.items()]

    def conversion_dimension(self, dimension: str) -> list[tuple]:
        """``(value, currency, *CONVERSION_COUNTERS)``; ``""`` for none (see
        ``aggregate_conversion_dimension``)."""
        rows = []
        if self.cut is not None:
            r = ConversionRollup.__table__.c
            rows = [
                (value, cur, *_counts(rest))
                for value, cur, *rest in get_state().db.session.execute(
                    select(r.value, r.currency, *(r[n] for n in CONVERSION_COUNTERS))
                    .where(r.campaign_id == self.campaign.id, r.dimension == dimension)
                )
            ]
        totals: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0), 0, Decimal(0), Decimal(0)])
        for value, cur, *counts in rows + aggregate_conversion_dimension(self.campaign.id, dimension, self.cut):
            t = totals[(value, cur)]
            for i, n in enumerate(counts):
                t[i] += n
        return [(value, cur, *v) for (value, cur), v in totals.items()]

