from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from flask_smstrack.db.migrate import (
    VERSION_TABLE,
    current_revision,
    downgrade,
    head_revision,
    include_name,
    include_object_for,
    upgrade,
)
from flask_smstrack.models import Base


def test_database_is_at_head(app):
    with app.app_context():
        assert current_revision() == head_revision()


def test_models_match_migrations(app):
    """The migrations create exactly what the models describe."""
    from wsgi import db

    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={"include_name": include_name, "include_object": include_object_for(conn),
                  "version_table": VERSION_TABLE, "compare_type": True},
        )
        assert compare_metadata(context, Base.metadata) == []


def test_upgrade_twice_is_harmless(app):
    from wsgi import db

    with app.app_context():
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    assert VERSION_TABLE in tables


def test_include_name_keeps_host_tables_out():
    assert include_name("smstrack_clicks", "table", {}) is True
    assert include_name("orders", "table", {}) is False
    assert include_name(VERSION_TABLE, "table", {}) is False


def test_0006_gives_each_conversion_its_campaign_owner(app):
    """Conversions stored before order ids were per owner get their
    campaign's owner; unattributed ones get none, and both keep their order
    ids, now unique per owner."""
    from wsgi import db

    with app.app_context():
        downgrade("0005")
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO smstrack_campaigns (id, owner_id, name, currency, status, created_at)"
                " VALUES (1, '7', 'Spring', 'USD', 'draft', CURRENT_TIMESTAMP), (2, NULL, 'Old', 'USD', 'draft', CURRENT_TIMESTAMP)"
            ))
            conn.execute(text(
                "INSERT INTO smstrack_conversions (created_at, campaign_id, event, order_id, source, trust) VALUES"
                " (CURRENT_TIMESTAMP, 1, 'purchase', 'A-1', 'server', 'verified'),"
                " (CURRENT_TIMESTAMP, 2, 'purchase', 'A-2', 'snippet', 'unverified'),"
                " (CURRENT_TIMESTAMP, NULL, 'purchase', 'A-3', 'snippet', 'unverified')"
            ))
        upgrade()
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT order_id, owner_id, refunded FROM smstrack_conversions ORDER BY order_id")).all()
        assert current_revision() == head_revision()
    assert [(order, owner, float(refunded)) for order, owner, refunded in rows] == [
        ("A-1", "7", 0.0), ("A-2", "", 0.0), ("A-3", "", 0.0)
    ]


def test_0008_keeps_the_rollup_states(app):
    """Rollup states from before purges count no purged unattributed
    conversions, and keep their cut."""
    from wsgi import db

    with app.app_context():
        downgrade("0007")
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO smstrack_campaigns (id, owner_id, name, currency, status, created_at)"
                " VALUES (1, '7', 'Spring', 'USD', 'draft', CURRENT_TIMESTAMP)"
            ))
            conn.execute(text(
                "INSERT INTO smstrack_rollup_state (campaign_id, rolled_until) VALUES (1, '2026-03-03 09:00:00')"
            ))
        upgrade()
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT campaign_id, unattributed, purged_until FROM smstrack_rollup_state")).all()
        assert current_revision() == head_revision()
    assert [tuple(r) for r in rows] == [(1, 0, None)]
