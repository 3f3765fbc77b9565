"""``flask smstrack partitions``: the monthly partitions of the clicks
(PostgreSQL), with their rows and sizes; ``--create-ahead`` makes the
missing ones."""
from __future__ import annotations

import click

from ..db.partitions import MONTHS_AHEAD, ensure_partitions, is_partitioned, list_partitions, missing_months
from .base import app_state, smstrack_cli


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@smstrack_cli.command("partitions")
@click.option("--create-ahead", is_flag=True,
              help="Make the partitions of this month and the next ones (and of months with rows in DEFAULT).")
@click.option("--months", type=click.IntRange(0, 120), default=MONTHS_AHEAD, show_default=True,
              help="Months ahead of this one that --create-ahead makes.")
@click.option("--exact", is_flag=True, help="Count each partition's rows (slower) instead of the estimate.")
def partitions_command(create_ahead: bool, months: int, exact: bool) -> None:
    """List the monthly partitions of the clicks table (PostgreSQL) with
    their rows and sizes."""
    engine = app_state().db.engine
    with engine.connect() as conn:
        if not is_partitioned(conn):
            click.echo("The clicks table is not partitioned (SQLite, or PostgreSQL before `flask smstrack init-db`"
                       " to revision 0010): nothing to list.")
            return
    if create_ahead:
        made = ensure_partitions(months)
        click.echo(f"Made {len(made)} partition(s){': ' + ', '.join(made) if made else ''}.")
    with engine.connect() as conn:
        rows = list_partitions(conn, exact=exact)
        missing = missing_months(conn)
    click.echo(f"{'Partition':<28} {'From':<10} {'To':<10} {'Rows' + ('' if exact else ' (est.)'):>14} {'Size':>10}")
    for p in rows:
        start = "-" if p.start is None else f"{p.start:%Y-%m-%d}"
        end = "-" if p.end is None else f"{p.end:%Y-%m-%d}"
        click.echo(f"{p.name:<28} {start:<10} {end:<10} {p.rows:>14} {_size(p.bytes):>10}")
    default = next((p for p in rows if p.is_default), None)
    if default is not None and default.rows:
        click.echo(f"{default.name} holds rows: `flask smstrack partitions --create-ahead` moves them"
                   " into partitions of their months.")
    for month in missing:
        click.echo(f"Warning: no partition for {month:%Y-%m}: its clicks land in DEFAULT. Run"
                   " `flask smstrack partitions --create-ahead`.", err=True)
