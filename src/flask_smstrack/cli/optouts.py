"""The suppression list: numbers opted out by hand or from a file."""
from __future__ import annotations

import click

from ..config import Keys
from ..models import EVERY_OWNER
from .base import app_state, find_owner, smstrack_cli


def _owner_options(f):
    f = click.option("--owner-id", help="Your app's user id, for owners that are not built-in users.")(f)
    return click.option(
        "--owner", help="Email of the built-in user whose campaigns the list holds for (default: every owner's)."
    )(f)


def _owner_id(email: str | None, owner_id: str | None) -> str:
    if email is not None and owner_id is not None:
        raise click.UsageError("give --owner or --owner-id, not both")
    if owner_id is not None:
        return owner_id
    return find_owner(email) or EVERY_OWNER


def _whose(owner: str) -> str:
    return "every owner" if owner == EVERY_OWNER else f"owner {owner}"


@smstrack_cli.command("opt-out")
@click.argument("phones", nargs=-1, required=True)
@_owner_options
@click.option("--remove", is_flag=True, help="Take the numbers off the list (they opted back in).")
@click.option("--region", help=f"Region of numbers without a country code (default {Keys.DEFAULT_REGION}).")
def opt_out_command(phones: tuple[str, ...], owner: str | None, owner_id: str | None, remove: bool,
                    region: str | None) -> None:
    """Add numbers to the suppression list (never prepared, exported or
    sent), or take them off with --remove."""
    from ..sms.optouts import normalize_all, opt_in, opt_out

    app_state()
    who = _owner_id(owner, owner_id)
    valid, invalid = normalize_all(phones, region)
    change = (opt_in if remove else opt_out)(valid, who, source="cli")
    if remove:
        click.echo(
            f"{change.changed} removed from the opt-out list of {_whose(who)}; {change.unchanged} were not on it."
        )
    else:
        click.echo(f"{change.changed} added to the opt-out list of {_whose(who)}; {change.unchanged} already on it.")
    for text, why in invalid:
        click.echo(f"  {why}", err=True)
    if invalid:
        raise click.ClickException(f"{len(invalid)} not a valid phone number")


@smstrack_cli.command("import-opt-outs")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@_owner_options
@click.option("--region", help=f"Region of numbers without a country code (default {Keys.DEFAULT_REGION}).")
def import_opt_outs_command(file: str, owner: str | None, owner_id: str | None, region: str | None) -> None:
    """Add the numbers of a CSV file (a phone column, as for recipients) to
    the suppression list, e.g. another platform's opt-outs."""
    from ..sms.optouts import import_opt_outs
    from ..sms.recipients import ImportError_, read_csv

    app_state()
    who = _owner_id(owner, owner_id)
    with click.open_file(file, encoding="utf-8-sig") as f:
        text = f.read()
    lines = max(text.count("\n") - 1, 0) + (0 if text.endswith("\n") else 1)
    try:
        with click.progressbar(length=max(lines, 1), label="Importing opt-outs") as bar:
            change = import_opt_outs(read_csv(text), who, region=region, progress=bar.update)
    except ImportError_ as err:
        raise click.ClickException(str(err)) from None
    click.echo(
        f"{change.changed} added to the opt-out list of {_whose(who)}; {change.unchanged} already on it;"
        f" {len(change.invalid)} invalid."
    )
    for where, why in change.invalid[:50]:
        click.echo(f"  line {where}: {why}", err=True)
    if len(change.invalid) > 50:
        click.echo(f"  ... and {len(change.invalid) - 50} more", err=True)
