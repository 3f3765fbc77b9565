"""The monthly partitions of ``smstrack_clicks`` on PostgreSQL.

Since revision 0010 the clicks table is partitioned by range of
``created_at``: one partition per calendar month (UTC), named
``smstrack_clicks_pYYYY_MM``, and ``smstrack_clicks_pdefault`` for clicks no
partition covers, so that no click is ever refused. Partitions are made
ahead of time by :func:`ensure_partitions` (the job
``flask_smstrack.db.partitions:ensure_partitions``, or
``flask smstrack partitions --create-ahead``); retention drops whole old
ones (:mod:`flask_smstrack.reports.partition_purge`).

PostgreSQL refuses to make a partition while the DEFAULT partition holds
rows of its month; :func:`create_partition` moves them into the new
partition in the same transaction.

On SQLite (and on PostgreSQL before revision 0010) there are no partitions
and every function here does nothing.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..state import get_state

logger = logging.getLogger("flask_smstrack")

PARENT = "smstrack_clicks"
DEFAULT = "smstrack_clicks_pdefault"
MONTHLY = re.compile(r"^smstrack_clicks_p(\d{4})_(\d{2})$")
#: Months :func:`ensure_partitions` makes ahead of the current one.
MONTHS_AHEAD = 3
#: The advisory lock that keeps two makers of partitions apart ("smsp").
LOCK_KEY = 0x736D7370
#: How long making a partition waits for a table lock before giving up
#: (the next run tries again): a long report must not hold up the clicks.
LOCK_TIMEOUT = "5s"
COLUMNS = (
    "id, click_id, created_at, link_id, campaign_id, recipient_id, variant_id, kind, is_first, human_confirmed,"
    " visitor_id, device_type, os, browser, country, ip, referrer_host, source, bot_reason, destination_no"
)
_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


def month_of(moment: dt.datetime | dt.date) -> dt.date:
    """The first day of ``moment``'s month (UTC)."""
    if isinstance(moment, dt.datetime) and moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc)
    return dt.date(moment.year, moment.month, 1)


def add_months(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def start_of(month: dt.date) -> dt.datetime:
    return dt.datetime(month.year, month.month, 1, tzinfo=dt.timezone.utc)


def partition_name(month: dt.date) -> str:
    return f"{PARENT}_p{month:%Y_%m}"


@dataclass
class Partition:
    """One partition: its range (``None`` for DEFAULT), rows and bytes."""

    name: str
    start: dt.datetime | None
    end: dt.datetime | None
    rows: int
    bytes: int

    @property
    def is_default(self) -> bool:
        return self.start is None


def is_partitioned(conn: Connection) -> bool:
    """Whether the clicks table is partitioned (PostgreSQL, revision 0010)."""
    if conn.dialect.name != "postgresql":
        return False
    return bool(conn.execute(text(
        "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid"
        " WHERE c.relname = :t AND pg_table_is_visible(c.oid)"
    ), {"t": PARENT}).first())


def _parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace(" ", "T")).astimezone(dt.timezone.utc)


def list_partitions(conn: Connection, exact: bool = False) -> list[Partition]:
    """The partitions, oldest first, DEFAULT last; rows are the planner's
    estimate unless ``exact`` (a count of each)."""
    if not is_partitioned(conn):
        return []
    rows = conn.execute(text(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), greatest(c.reltuples, 0)::bigint,"
        " pg_total_relation_size(c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = CAST(:t AS regclass)"
    ), {"t": PARENT}).all()
    out = []
    for name, bound, estimate, size in rows:
        found = _BOUND.search(bound or "")
        start, end = (_parse_time(found[1]), _parse_time(found[2])) if found else (None, None)
        count = conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one() if exact else int(estimate)
        out.append(Partition(name, start, end, count, int(size)))
    far = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    return sorted(out, key=lambda p: (p.start is None, p.start or far))


def _covered(conn: Connection, month: dt.date) -> bool:
    """Whether some partition (other than DEFAULT) covers the start of ``month``."""
    return any(
        p.start is not None and p.start <= start_of(month) < p.end for p in list_partitions(conn)
    )


def create_partition(conn: Connection, month: dt.date) -> bool:
    """Make the partition of ``month`` unless one covers it, moving the rows
    of that month out of DEFAULT; ``False`` when it existed. Runs in the
    caller's transaction, which should hold :data:`LOCK_KEY`."""
    if _covered(conn, month):
        return False
    name, lo, hi = partition_name(month), start_of(month), start_of(add_months(month, 1))
    bounds = {"lo": lo, "hi": hi}
    conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    # Clicks of this month arriving meanwhile wait (no row can slip into
    # DEFAULT between the move and the attach); other months go on.
    conn.execute(text(f"LOCK TABLE {DEFAULT} IN SHARE ROW EXCLUSIVE MODE"))
    # Made apart and attached: CREATE ... PARTITION OF would lock the whole
    # table against every click while it waits; ATTACH lets them in. The
    # CHECK spares ATTACH a scan of the new partition.
    conn.execute(text(f'CREATE TABLE "{name}" (LIKE {PARENT} INCLUDING DEFAULTS)'))
    conn.execute(text(
        f'ALTER TABLE "{name}" ADD CONSTRAINT "{name}_bounds"'
        f" CHECK (created_at >= '{lo.isoformat()}' AND created_at < '{hi.isoformat()}')"
    ))
    moved = conn.execute(text(
        f'INSERT INTO "{name}" ({COLUMNS}) SELECT {COLUMNS} FROM {DEFAULT}'
        " WHERE created_at >= :lo AND created_at < :hi"
    ), bounds).rowcount
    if moved:
        # These clicks are moved, not deleted: the trigger that unattributes
        # the conversions of deleted clicks leaves them be.
        conn.execute(text("SET LOCAL smstrack.moving_clicks = 'on'"))
        conn.execute(text(f"DELETE FROM {DEFAULT} WHERE created_at >= :lo AND created_at < :hi"), bounds)
        conn.execute(text("SET LOCAL smstrack.moving_clicks = 'off'"))
    conn.execute(text(
        f'ALTER TABLE {PARENT} ATTACH PARTITION "{name}"'
        f" FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"
    ))
    conn.execute(text(f'ALTER TABLE "{name}" DROP CONSTRAINT "{name}_bounds"'))
    logger.info("Made the clicks partition %s (%d rows moved from DEFAULT)", name, moved)
    return True


def months_in_default(conn: Connection) -> list[dt.date]:
    """The months of the rows in DEFAULT."""
    return [
        row[0].date() for row in conn.execute(text(
            f"SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC') FROM {DEFAULT} ORDER BY 1"
        ))
    ]


def lock(conn: Connection) -> None:
    """Wait for the advisory lock of partition changes (until the
    transaction ends)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})


def ensure_partitions(months_ahead: int = MONTHS_AHEAD, now: dt.datetime | None = None) -> list[str]:
    """Make the partitions of this month and the next ``months_ahead``, and
    of every month that has rows in DEFAULT (moving them); returns the names
    made. Idempotent and safe to run concurrently (an advisory lock). The
    job ``flask_smstrack.db.partitions:ensure_partitions``."""
    engine = get_state().db.engine
    current = month_of(now or dt.datetime.now(dt.timezone.utc))
    made: list[str] = []
    with engine.connect() as conn:
        if not is_partitioned(conn):
            conn.rollback()
            return made
        conn.rollback()
        wanted = [add_months(current, n) for n in range(months_ahead + 1)]
        with conn.begin():
            lock(conn)
            months = sorted(set(wanted) | set(months_in_default(conn)))
        for month in months:
            # One transaction per month: a lock timeout loses only that one.
            try:
                with conn.begin():
                    lock(conn)
                    if create_partition(conn, month):
                        made.append(partition_name(month))
            except Exception:
                logger.exception("Could not make the clicks partition %s; the next run tries again",
                                 partition_name(month))
    return made


def missing_months(conn: Connection, now: dt.datetime | None = None) -> list[dt.date]:
    """This month and the next, when no partition covers them (their clicks
    land in DEFAULT); empty when the table is not partitioned."""
    if not is_partitioned(conn):
        return []
    current = month_of(now or dt.datetime.now(dt.timezone.utc))
    return [m for m in (current, add_months(current, 1)) if not _covered(conn, m)]


def drop_partition(conn: Connection, name: str) -> None:
    """Drop a monthly partition and its rows (retention), in the caller's
    transaction. Waits at most :data:`LOCK_TIMEOUT` for the table."""
    if not MONTHLY.match(name):
        raise ValueError(f"{name} is not a monthly clicks partition")
    conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    conn.execute(text(f'ALTER TABLE {PARENT} DETACH PARTITION "{name}"'))
    conn.execute(text(f'DROP TABLE "{name}"'))
