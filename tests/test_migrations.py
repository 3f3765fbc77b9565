from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from flask_smstrack.db.migrate import VERSION_TABLE, current_revision, head_revision, include_name, upgrade
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
            opts={"include_name": include_name, "version_table": VERSION_TABLE, "compare_type": True},
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
