"""Alembic environment of flask-smstrack; run through flask_smstrack.db.migrate."""
from alembic import context

from flask_smstrack.db.migrate import VERSION_TABLE, include_name, include_object_for
from flask_smstrack.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    include_name=include_name,
    include_object=include_object_for(connection),
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
