"""The best time to send: ``flask smstrack best-time`` and ``send --at best``."""
from __future__ import annotations

import sys

import click

from ..models import Campaign
from .base import app_state, smstrack_cli

#: The ``--at`` value that picks the recommended local hour.
BEST = "best"


def best_at(campaign: Campaign) -> str:
    """``HH:MM``, the start of the local hour recommended for the owner of
    ``campaign``; a :class:`click.ClickException` saying why and what to do
    when nothing is recommended."""
    from ..reports.timing import best_time

    found = best_time(campaign.owner_id)
    if found.at is None:
        raise click.ClickException(
            f"--at best: no best time to send yet: {found.reason}. Pick the local time yourself with --at HH:MM,"
            " or send without --at; see the evidence with: flask smstrack best-time"
        )
    click.echo(f"{found.summary()}.")
    return f"{found.at:%H:%M}"


@smstrack_cli.command("best-time")
@click.option("--owner", "owner_id", help="The owner id whose campaigns count (a built-in user's id, or the host app's).")
@click.option("--csv", "as_csv", is_flag=True, help="Write the per-hour table as CSV.")
def best_time_command(owner_id: str | None, as_csv: bool) -> None:
    """The best local hour to send, with the CTR of each local hour of
    sending in the recipients' time zones (95% intervals)."""
    from ..reports.export import table_csv
    from ..reports.timing import best_time

    app_state()
    found = best_time(owner_id)
    if as_csv:
        sys.stdout.write(table_csv(found.table()))
        return
    click.echo(found.summary())
    for row in found.rows():
        if not row["messages"]:
            continue
        flags = " best" if row["best"] else (" quiet hours" if row["quiet"] else "")
        click.echo(
            f"  {row['local_time']}  {row['messages']:>9,} messages  {row['campaigns']:>4} campaigns"
            f"  CTR {row['ctr'] * 100:5.1f}% ({row['ctr_low'] * 100:.1f}-{row['ctr_high'] * 100:.1f}%){flags}"
        )
