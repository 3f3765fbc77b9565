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
spool reset the campaign's rollups, which are then rebuilt.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, and_, case, cast, delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

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
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
#: Rows this recent are left to the live side: a click or conversion
#: committed late (a slow transaction, clocks apart) is still counted.
SETTLE = dt.timedelta(minutes=2)

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


def _dialect() -> str:
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


# -- the aggregates, over a time range ----------------------------------------


def aggregate_click_buckets(campaign_id: int, since=None, until=None) -> list[tuple]:
    """``(bucket, kind, clicks, firsts, confirmed)`` rows."""
    bucket = _bucket(_c.created_at, _dialect()).label("bucket")
    return [
        (int(b), k, n, int(f or 0), int(h or 0))
        for b, k, n, f, h in get_state().db.session.execute(
            select(
                bucket,
                _c.kind,
                func.count(),
                func.sum(case((_c.is_first, 1), else_=0)),
                func.sum(case((_c.human_confirmed, 1), else_=0)),
            )
            .where(_range(_c.created_at, _c.campaign_id, campaign_id, since, until))
            .group_by(bucket, _c.kind)
        )
    ]


def _click_dimension_column(dimension: str, sent_at, dialect: str):
    if dimension == "send_delay":
        return _delay_bin(_c.created_at, literal(sent_at, type_=Click.created_at.type), dialect)
    return DIMENSIONS[dimension]


def aggregate_click_dimension(campaign_id: int, dimension: str, sent_at=None, since=None, until=None) -> list[tuple]:
    """``(value, kind, clicks, firsts)`` rows; ``value`` is a string, ``""`` for none."""
    if dimension == "send_delay" and sent_at is None:
        return []
    column = _click_dimension_column(dimension, sent_at, _dialect()).label("value")
    condition = _range(_c.created_at, _c.campaign_id, campaign_id, since, until)
    if dimension == "send_delay":
        condition = and_(condition, _c.created_at >= sent_at)
    rows = get_state().db.session.execute(
        select(column, _c.kind, func.count(), func.sum(case((_c.is_first, 1), else_=0)))
        .where(condition)
        .group_by(column, _c.kind)
    )
    return [("" if value is None else str(value), k, n, int(f or 0)) for value, k, n, f in rows]


CONVERSION_DIMENSIONS = ("bucket", "click_delay", *DIMENSIONS)


def aggregate_conversion_dimension(campaign_id: int, dimension: str, since=None, until=None) -> list[tuple]:
    """``(value, currency, conversions, revenue)`` rows of attributed conversions.

    ``currency`` is the currency of the revenue: a conversion without revenue
    (a sign-up) counts under ``""`` even when it named a currency, so the
    conversions of a currency are its orders.
    """
    dialect = _dialect()
    if dimension == "bucket":
        column = _bucket(_v.created_at, dialect)
    elif dimension == "click_delay":
        column = _delay_bin(_v.created_at, _c.created_at, dialect)
    else:
        column = DIMENSIONS[dimension]
    column = column.label("value")
    currency = case((_v.revenue.is_(None), literal("")), else_=_v.currency).label("currency")
    rows = get_state().db.session.execute(
        select(column, currency, func.count(), func.sum(_v.revenue))
        .select_from(Conversion.__table__.outerjoin(Click.__table__, _v.click_pk == _c.id))
        .where(_range(_v.created_at, _v.campaign_id, campaign_id, since, until))
        .group_by(column, currency)
    )
    return [
        ("" if value is None else str(value), currency or "", n, Decimal(total) if total is not None else Decimal(0))
        for value, currency, n, total in rows
    ]


# -- keeping the rollups ------------------------------------------------------


def _upsert_add(model, rows: list[dict], keys: tuple[str, ...], counters: tuple[str, ...]) -> None:
    if not rows:
        return
    insert = pg_insert if _dialect() == "postgresql" else sqlite_insert
    table = model.__table__
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c[k] for k in keys],
        set_={c: table.c[c] + stmt.excluded[c] for c in counters},
    )
    get_state().db.session.execute(stmt, rows)


def _state_for(campaign_id: int) -> RollupState | None:
    return get_state().db.session.get(RollupState, campaign_id, populate_existing=True)


def refresh(campaign: Campaign, now: dt.datetime | None = None) -> bool:
    """Move the campaign's cut to two minutes ago, rolling up what it passes.

    Safe to run from several processes: the cut moves with a
    compare-and-set, and a refresh that loses the race changes nothing.
    Returns whether this call moved the cut.
    """
    session = get_state().db.session
    until = (now or utcnow()) - SETTLE
    state = _state_for(campaign.id)
    if state is not None and state.sent_at != campaign.sent_at:
        reset(campaign.id)
        state = None
    if state is None:
        session.add(RollupState(campaign_id=campaign.id, rolled_until=_EPOCH, sent_at=campaign.sent_at))
        try:
            session.commit()
        except IntegrityError:  # another process created it first
            session.rollback()
        state = _state_for(campaign.id)
    since = state.rolled_until
    if until <= since:
        return False
    moved = session.execute(
        update(RollupState)
        .where(RollupState.campaign_id == campaign.id, RollupState.rolled_until == since)
        .values(rolled_until=until)
    ).rowcount
    if not moved:
        session.rollback()
        return False
    cid = campaign.id
    _upsert_add(
        ClickRollup,
        [
            {"campaign_id": cid, "bucket": b, "kind": k, "clicks": n, "firsts": f, "confirmed": h}
            for b, k, n, f, h in aggregate_click_buckets(cid, since, until)
        ],
        ("campaign_id", "bucket", "kind"),
        ("clicks", "firsts", "confirmed"),
    )
    for dimension in (*DIMENSIONS, "send_delay"):
        _upsert_add(
            ClickDimensionRollup,
            [
                {"campaign_id": cid, "dimension": dimension, "value": value, "kind": k, "clicks": n, "firsts": f}
                for value, k, n, f in aggregate_click_dimension(cid, dimension, campaign.sent_at, since, until)
            ],
            ("campaign_id", "dimension", "value", "kind"),
            ("clicks", "firsts"),
        )
    for dimension in CONVERSION_DIMENSIONS:
        _upsert_add(
            ConversionRollup,
            [
                {"campaign_id": cid, "dimension": dimension, "value": value, "currency": cur, "conversions": n, "revenue": total}
                for value, cur, n, total in aggregate_conversion_dimension(cid, dimension, since, until)
            ],
            ("campaign_id", "dimension", "value", "currency"),
            ("conversions", "revenue"),
        )
    session.commit()
    return True


def reset(campaign_id: int) -> None:
    """Forget a campaign's rollups; the next refresh rebuilds them."""
    session = get_state().db.session
    for model in (RollupState, ClickRollup, ClickDimensionRollup, ConversionRollup):
        session.execute(delete(model).where(model.campaign_id == campaign_id))
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

    def __init__(self, campaign: Campaign, *, refresh_after: dt.timedelta | None = dt.timedelta(minutes=1)) -> None:
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
        """``(value, currency, conversions, revenue)``; ``""`` for none (see
        ``aggregate_conversion_dimension``)."""
        totals: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0)])
        if self.cut is not None:
            for value, cur, n, total in get_state().db.session.execute(
                select(ConversionRollup.value, ConversionRollup.currency, ConversionRollup.conversions, ConversionRollup.revenue)
                .where(ConversionRollup.campaign_id == self.campaign.id, ConversionRollup.dimension == dimension)
            ):
                t = totals[(value, cur)]
                t[0] += n; t[1] += Decimal(total)  # noqa: E702
        for value, cur, n, total in aggregate_conversion_dimension(self.campaign.id, dimension, self.cut):
            t = totals[(value, cur)]
            t[0] += n; t[1] += total  # noqa: E702
        return [(value, cur, *v) for (value, cur), v in totals.items()]
