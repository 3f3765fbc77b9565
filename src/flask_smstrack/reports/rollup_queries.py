"""The rollups' aggregate queries, one definition each.

Every count a report shows comes from one of the builders below, read three
ways: per campaign over a time range (the live rows after a campaign's cut),
grouped by campaign over every row after each campaign's cut (a catch-up
adding them to the rollup tables, see rollups.py), and over the rows a
change takes out or puts back (rollup_edits.py). So a number means the same
whether it was rolled up or not.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, Select, String, and_, case, cast, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..models import Click, Conversion
from ..state import get_state

BUCKET_SECONDS = 900
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
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


# -- adding to the rollups ------------------------------------------------------


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
