"""Schema migrations: the Alembic environment and its revisions."""
