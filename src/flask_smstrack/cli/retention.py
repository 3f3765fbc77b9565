"""Retention: ``flask smstrack purge``."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import click
from flask import current_app

from ..config import Keys
from ..models import utcnow
from ..reports.retention import BATCH_SIZE, PurgeCount, plan, purge
from .base import app_state, smstrack_cli
from .subjects import forget_phones


def _days(name: str) -> int | None:
    value = current_app.config[name]
    if value in (None, ""):
        return None
    try:
        days = int(value)
    except (TypeError, ValueError):
        days = -1
    if days < 0 or isinstance(value, bool):
        raise click.ClickException(f"{name} must be a whole number of days (0 or more), not {value!r}")
    return days


def cutoff(before: str | None, now: dt.datetime) -> dt.datetime:
    """The time rows created before are purged: ``--before`` (a date, the
    start of that day in ``SMSTRACK_TIMEZONE``, or a date and time), else
    now minus ``SMSTRACK_RETENTION_DAYS``."""
    if before is None:
        days = _days(Keys.RETENTION_DAYS)
        if days is None:
            raise click.UsageError(
                f"Nothing says what to purge: set {Keys.RETENTION_DAYS} (days to keep raw clicks and "
                "conversions) or pass --before DATE."
            )
        return now - dt.timedelta(days=days)
    try:
        moment = dt.datetime.fromisoformat(before)
    except ValueError:
        raise click.BadParameter(
            f"{before!r} is not a date: write it as YYYY-MM-DD, or YYYY-MM-DDTHH:MM[+HH:MM].", param_hint="--before"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(current_app.config[Keys.TIMEZONE]))
    moment = moment.astimezone(dt.timezone.utc)
    if moment > now:
        raise click.BadParameter(f"{before} is in the future: only past rows can be purged.", param_hint="--before")
    return moment


def _table(rows: list[PurgeCount]) -> None:
    click.echo(f"{'Campaign':>8}  {'Name':<30} {'Clicks':>10} {'Conversions':>12} {'Kept clicks':>12}")
    for r in rows:
        cid = "-" if r.campaign_id is None else str(r.campaign_id)
        click.echo(f"{cid:>8}  {r.name[:30]:<30} {r.clicks:>10} {r.conversions:>12} {r.kept_clicks:>12}")
    total = (sum(r.clicks for r in rows), sum(r.conversions for r in rows), sum(r.kept_clicks for r in rows))
    click.echo(f"{'Total':>8}  {'':<30} {total[0]:>10} {total[1]:>12} {total[2]:>12}")


@smstrack_cli.command("purge")
@click.option("--before", metavar="DATE", help="Purge rows created before this date (default: the retention setting).")
@click.option("--dry-run", is_flag=True, help="Print what would be deleted, per campaign; delete nothing.")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=BATCH_SIZE, show_default=True,
              help="Rows deleted per transaction.")
def purge_command(before: str | None, dry_run: bool, batch_size: int) -> None:
    """Delete raw clicks and conversions older than the retention period,
    once their counts are in the rollups: every report stays the same. With
    SMSTRACK_FORGET_PHONES_AFTER_DAYS set, also forget the numbers that are due."""
    app_state()
    forgetting = current_app.config[Keys.FORGET_PHONES_AFTER_DAYS] is not None
    if before is None and current_app.config[Keys.RETENTION_DAYS] in (None, "") and forgetting:
        forget_phones(dry_run)  # nothing else to purge
        return
    now = utcnow()
    moment = cutoff(before, now)
    window = _days(Keys.ATTRIBUTION_WINDOW_DAYS) or 0
    rows = plan(moment, window, now)
    when = moment.strftime("%Y-%m-%d %H:%M UTC")
    if dry_run:
        click.echo(f"Dry run: would purge clicks and conversions created before {when}.")
        _table(rows)
        click.echo("Nothing was deleted.")
        if forgetting:
            forget_phones(dry_run)
        return
    total = sum(r.clicks + r.conversions for r in rows)
    click.echo(f"Purging clicks and conversions created before {when}.")
    with click.progressbar(length=total, label="Deleting rows") as bar:
        done = purge(moment, window, now=now, batch_size=batch_size, progress=bar.update)
    _table(done)
    if any(r.kept_clicks for r in done):
        click.echo(
            f"Kept clicks: a stored conversion is attributed to them, or one still could be "
            f"({Keys.ATTRIBUTION_WINDOW_DAYS}); a later purge deletes them."
        )
    if forgetting:
        forget_phones(dry_run)
