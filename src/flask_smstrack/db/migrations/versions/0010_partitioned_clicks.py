"""Clicks partitioned by month on PostgreSQL (SQLite unchanged)

``smstrack_clicks`` becomes a table partitioned by range of ``created_at``,
one partition per calendar month (UTC) named ``smstrack_clicks_pYYYY_MM``,
plus ``smstrack_clicks_pdefault`` for any click no partition covers. The
rows move in this migration's transaction: the table is locked (ACCESS
EXCLUSIVE) while they are copied, so the redirect spools its clicks
meanwhile. For tables of tens of millions of rows, see the docs
("Partitioned clicks: upgrading a large table").

What partitioning requires, and what replaces it:

- the primary key is ``(id, created_at)``; ``id`` still comes from the same
  sequence, so ids stay unique;
- ``click_id`` is unique with its time, ``(click_id, created_at)``: a click
  id encodes the millisecond it was made, so two clicks never share one;
- ``smstrack_conversions.click_pk`` can no longer be a foreign key (it
  would need a unique ``id`` alone): a trigger on the clicks does what
  ``ON DELETE SET NULL`` did, and a dropped partition (retention) never
  holds a click a conversion still names.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 05:00:00
"""
import datetime as dt

from alembic import op
from sqlalchemy import text

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

#: Months made ahead of the current one.
MONTHS_AHEAD = 3
_FK = "fk_smstrack_conversions_click_pk_smstrack_clicks"
_OLD = "smstrack_clicks_unpartitioned"
_COLUMNS = (
    "id, click_id, created_at, link_id, campaign_id, recipient_id, variant_id, kind, is_first, human_confirmed,"
    " visitor_id, device_type, os, browser, country, ip, referrer_host, source, bot_reason"
)


def _month(moment: dt.datetime) -> dt.date:
    return dt.date(moment.year, moment.month, 1)


def _next(month: dt.date) -> dt.date:
    return dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _indexes_and_keys(execute) -> None:
    """What both shapes of the table share: indexes and foreign keys."""
    execute("CREATE INDEX ix_smstrack_clicks_campaign_time ON smstrack_clicks (campaign_id, created_at)")
    execute("CREATE INDEX ix_smstrack_clicks_recipient ON smstrack_clicks (recipient_id)"
            " WHERE recipient_id IS NOT NULL")
    execute("CREATE INDEX ix_smstrack_clicks_visitor_link ON smstrack_clicks (visitor_id, link_id)"
            " WHERE visitor_id IS NOT NULL")
    execute("ALTER TABLE smstrack_clicks ADD CONSTRAINT fk_smstrack_clicks_campaign_id_smstrack_campaigns"
            " FOREIGN KEY (campaign_id) REFERENCES smstrack_campaigns (id) ON DELETE CASCADE")
    execute("ALTER TABLE smstrack_clicks ADD CONSTRAINT fk_smstrack_clicks_link_id_smstrack_links"
            " FOREIGN KEY (link_id) REFERENCES smstrack_links (id) ON DELETE CASCADE")


def _swap(execute, create: str) -> None:
    """Copy the clicks into a new table made by ``create`` (which names it
    ``smstrack_clicks``), then drop the old one; the id sequence and its
    value stay."""
    execute("LOCK TABLE smstrack_clicks IN ACCESS EXCLUSIVE MODE")
    execute(f"ALTER TABLE smstrack_conversions DROP CONSTRAINT IF EXISTS {_FK}")
    execute(f"ALTER TABLE smstrack_clicks RENAME TO {_OLD}")
    execute(create)


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    execute = lambda sql: bind.execute(text(sql))  # noqa: E731
    _swap(execute, f"CREATE TABLE smstrack_clicks (LIKE {_OLD} INCLUDING DEFAULTS) PARTITION BY RANGE (created_at)")
    # A partition for each month that holds clicks, this month and the
    # next few.
    months = {
        row[0].date() for row in bind.execute(text(
            f"SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC') FROM {_OLD}"
        ))
    }
    month = _month(dt.datetime.now(dt.timezone.utc))
    for _ in range(MONTHS_AHEAD + 1):
        months.add(month)
        month = _next(month)
    for month in sorted(months):
        execute(f"CREATE TABLE smstrack_clicks_p{month:%Y_%m} PARTITION OF smstrack_clicks"
                f" FOR VALUES FROM ('{month.isoformat()} 00:00:00+00') TO ('{_next(month).isoformat()} 00:00:00+00')")
    execute("CREATE TABLE smstrack_clicks_pdefault PARTITION OF smstrack_clicks DEFAULT")
    execute(f"INSERT INTO smstrack_clicks ({_COLUMNS}) SELECT {_COLUMNS} FROM {_OLD}")
    execute("ALTER SEQUENCE smstrack_clicks_id_seq OWNED BY smstrack_clicks.id")
    execute(f"DROP TABLE {_OLD}")
    # Keys and indexes after the copy: built once per partition, faster
    # than kept up row by row.
    execute("ALTER TABLE smstrack_clicks ADD CONSTRAINT pk_smstrack_clicks PRIMARY KEY (id, created_at)")
    execute("ALTER TABLE smstrack_clicks ADD CONSTRAINT uq_smstrack_clicks_click_id_created_at"
            " UNIQUE (click_id, created_at)")
    _indexes_and_keys(execute)
    # What ON DELETE SET NULL did for conversions attributed to a click, once
    # per statement (a campaign's deletion or a purge's batch: one join, not
    # one update per click); not for clicks moved between partitions
    # (smstrack.moving_clicks).
    execute(
        "CREATE OR REPLACE FUNCTION smstrack_clicks_unattribute() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN IF coalesce(current_setting('smstrack.moving_clicks', true), '') <> 'on' THEN"
        " UPDATE smstrack_conversions v SET click_pk = NULL FROM gone WHERE v.click_pk = gone.id; END IF;"
        " RETURN NULL; END $$"
    )
    execute("CREATE TRIGGER smstrack_clicks_unattribute AFTER DELETE ON smstrack_clicks"
            " REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION smstrack_clicks_unattribute()")
    execute("ANALYZE smstrack_clicks")


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    execute = lambda sql: bind.execute(text(sql))  # noqa: E731
    _swap(execute, f"CREATE TABLE smstrack_clicks (LIKE {_OLD} INCLUDING DEFAULTS)")
    execute(f"INSERT INTO smstrack_clicks ({_COLUMNS}) SELECT {_COLUMNS} FROM {_OLD}")
    execute("ALTER SEQUENCE smstrack_clicks_id_seq OWNED BY smstrack_clicks.id")
    execute(f"DROP TABLE {_OLD}")  # and its partitions
    execute("DROP FUNCTION IF EXISTS smstrack_clicks_unattribute()")
    # A click id made twice (in different months) fails here: keep the
    # first such click of each id before downgrading.
    execute("ALTER TABLE smstrack_clicks ADD CONSTRAINT pk_smstrack_clicks PRIMARY KEY (id)")
    execute("ALTER TABLE smstrack_clicks ADD CONSTRAINT uq_smstrack_clicks_click_id UNIQUE (click_id)")
    _indexes_and_keys(execute)
    execute("UPDATE smstrack_conversions SET click_pk = NULL WHERE click_pk IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM smstrack_clicks c WHERE c.id = click_pk)")
    execute(f"ALTER TABLE smstrack_conversions ADD CONSTRAINT {_FK} FOREIGN KEY (click_pk)"
            " REFERENCES smstrack_clicks (id) ON DELETE SET NULL")
