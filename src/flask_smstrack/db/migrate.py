"""Schema migrations with Alembic, kept apart from the host app's own.

The extension's migrations live in ``flask_smstrack/migrations`` and record
their state in the table ``smstrack_alembic_version``, so they never meet a
host app's Flask-Migrate history. SQLite runs in batch mode.
"""
from __future__ import annotations

import re
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ..state import get_state

VERSION_TABLE = "smstrack_alembic_version"
_SCRIPTS = Path(__file__).resolve().parent / "migrations"


def include_name(name: str | None, type_: str, parent_names) -> bool:
    """An Alembic ``include_name`` hook that keeps only smstrack tables.

    Host apps that autogenerate their own migrations pass the opposite,
    ``not flask_smstrack.db.migrate.include_name(...)``, for tables, so that
    neither history tries to create or drop the other's tables.
    """
    if type_ == "table":
        return bool(name) and name.startswith("smstrack_") and name != VERSION_TABLE
    return True


#: The monthly partitions of ``smstrack_clicks`` on PostgreSQL, and its
#: DEFAULT partition (see :mod:`flask_smstrack.db.partitions`).
PARTITION_NAME = re.compile(r"^smstrack_clicks_p(\d{4}_\d{2}|default)$")


#: Foreign keys of the models that PostgreSQL's tables do without.
_NOT_ON_POSTGRESQL = frozenset({
    "fk_smstrack_conversions_click_pk_smstrack_clicks",
    "fk_smstrack_clicks_link_id_smstrack_links",
    "fk_smstrack_clicks_campaign_id_smstrack_campaigns",
})


def include_object_for(connection):
    """An Alembic ``include_object`` hook for comparing the database behind
    ``connection`` with the models. On PostgreSQL, ``smstrack_clicks`` is
    partitioned by month (revision 0010) and differs from the model on
    purpose in what partitioning requires; left out of the comparison there:

    - the partitions themselves (``include_name`` keeps them: they belong
      to smstrack, so a host app's migrations leave them alone);
    - ``click_id`` unique with ``created_at`` instead of alone (the primary
      key is ``(id, created_at)``, which Alembic does not compare);
    - ``smstrack_conversions.click_pk`` without a foreign key (a trigger
      does what ``ON DELETE SET NULL`` did);
    - ``link_id`` and ``campaign_id`` without foreign keys (revision 0016):
      checking them locked the link's and the campaign's row on every click;
      triggers delete the clicks of a deleted link or campaign instead.
    """
    partitioned = connection.dialect.name == "postgresql"

    def include_object(obj, name, type_, reflected, compare_to) -> bool:
        if not partitioned:
            return True
        if type_ == "table":
            return not (name and PARTITION_NAME.match(name))
        table = getattr(obj, "table", None)
        if table is not None and PARTITION_NAME.match(table.name):
            return False
        if type_ == "unique_constraint" and table is not None and table.name == "smstrack_clicks":
            return name not in ("uq_smstrack_clicks_click_id", "uq_smstrack_clicks_click_id_created_at")
        return not (type_ == "foreign_key_constraint" and name in _NOT_ON_POSTGRESQL)

    return include_object


def _config(connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(revision: str = "head") -> None:
    """Create or upgrade the smstrack tables of the current app's database."""
    engine = get_state().db.engine
    with engine.begin() as connection:
        command.upgrade(_config(connection), revision)


def downgrade(revision: str) -> None:
    """Take the smstrack tables of the current app's database back to ``revision``."""
    engine = get_state().db.engine
    with engine.begin() as connection:
        command.downgrade(_config(connection), revision)


def current_revision() -> str | None:
    engine = get_state().db.engine
    with engine.connect() as connection:
        return MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()


def head_revision() -> str | None:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def new_revision(message: str) -> None:
    """Autogenerate a migration from the models (for developers of flask-smstrack)."""
    engine = get_state().db.engine
    with engine.begin() as connection:
        command.revision(_config(connection), message=message, autogenerate=True)
