"""``flask smstrack status``: the health checks of ``/smstrack/healthz`` as a
table, with the version, the database kind, the migration state and row
counts."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import click
from flask import current_app
from sqlalchemy import func, select, text

from ..db.migrate import current_revision, head_revision
from ..models import Campaign, Click, Link
from ..web.health import run_checks
from .base import app_state, smstrack_cli

#: Above this many rows (PostgreSQL's estimate), a table's count is the
#: estimate, shown with ``~``: an exact count(*) of millions of clicks
#: takes seconds.
EXACT_BELOW = 1_000_000


def _count(connection, model) -> str:
    table = model.__table__.name
    if connection.dialect.name == "postgresql":
        estimate = connection.execute(text(
            "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0) FROM pg_class c"
            " WHERE c.oid = to_regclass(:t)"
            " OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(:t))"
        ), {"t": table}).scalar()
        if estimate >= EXACT_BELOW:
            return f"~{int(estimate):,}"
    return f"{connection.execute(select(func.count()).select_from(model.__table__)).scalar():,}"


def _version() -> str:
    try:
        return version("flask-smstrack")
    except PackageNotFoundError:
        return "unknown"


@smstrack_cli.command("status")
def status_command() -> None:
    """Health of this node (database, Redis, spool, job queue), version, migrations, counts.

    Exits 0 when every check passes and the database is at the newest
    migration, 1 otherwise.
    """
    state = app_state()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    engine = state.db.engine
    results = run_checks(app)
    healthy = not any(r.failing for r in results.values())

    rows = [("version", _version(), ""), ("database kind", f"{engine.dialect.name} ({engine.dialect.driver})", "")]
    head = head_revision()
    if results["database"].failing:
        rows.append(("migrations", "unknown", "the database did not answer"))
        rows += [(name, "unknown", "") for name in ("campaigns", "links", "clicks")]
    else:
        try:
            current = current_revision()
            if current == head:
                rows.append(("migrations", f"{current} (newest)", ""))
            else:
                healthy = False
                rows.append(("migrations", f"{current or 'empty'}, newest is {head}",
                             "run: flask smstrack init-db"))
            with engine.connect() as connection:
                for name, model in (("campaigns", Campaign), ("links", Link), ("clicks", Click)):
                    rows.append((name, _count(connection, model), ""))
        except Exception as err:
            healthy = False
            rows.append(("counts", "unknown", f"could not read the tables: {type(err).__name__}"))

    checks = []
    for name, r in results.items():
        shown = r.status
        if name == "spool":
            shown += f", {r.details.get('records', 0)} records in {r.details.get('files', 0)} files waiting"
        elif name == "jobs" and r.details:
            d = r.details
            shown += (f", {d['queued']} queued, {d['started']} running, {d['failed']} failed,"
                      f" {d['scheduled']} scheduled, {d['workers']} worker{'s' if d['workers'] != 1 else ''}")
        checks.append((name, f"{shown} ({r.ms:.0f} ms)", r.message or ""))

    width = max(len(name) for name, _, _ in rows + checks)
    click.echo(f"{'CHECK'.ljust(width)}  RESULT")
    for name, value, note in checks + rows:
        line = f"{name.ljust(width)}  {value}"
        click.echo(f"{line}  - {note}" if note else line)
    click.echo(f"{'status'.ljust(width)}  {'ok' if healthy else 'FAILING'}")
    if not healthy:
        raise SystemExit(1)
