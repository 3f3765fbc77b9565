"""One person's data: ``subject export`` and ``subject erase``; and
``forget-phones`` (``SMSTRACK_FORGET_PHONES_AFTER_DAYS``)."""
from __future__ import annotations

import json

import click

from ..config import Keys
from .base import app_state, smstrack_cli


@smstrack_cli.group("subject")
def subject_cli() -> None:
    """Everything stored about one phone number: export or erase it."""


def _phone(raw: str, region: str | None) -> str:
    from ..sms.subjects import subject_phone

    app_state()
    try:
        return subject_phone(raw, region)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="PHONE") from None


_REGION = click.option("--region", help=f"Region of a number without a country code (default {Keys.DEFAULT_REGION}).")


@subject_cli.command("export")
@click.argument("phone")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True, allow_dash=True), default="-",
              help="Write the JSON to this file (default: standard output).")
@_REGION
def subject_export_command(phone: str, output: str, region: str | None) -> None:
    """Export everything stored about PHONE, across every owner, as JSON:
    recipient rows and messages, clicks, conversions, consent, opt-outs."""
    from ..sms.subjects import export_subject

    data = export_subject(_phone(phone, region))
    with click.open_file(output, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write("\n")
    if output != "-":
        click.echo(
            f"Exported {len(data['recipients'])} recipient rows, {len(data['clicks'])} clicks, "
            f"{len(data['conversions'])} conversions to {output}.",
            err=True,
        )


@subject_cli.command("erase")
@click.argument("phone")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_REGION
def subject_erase_command(phone: str, yes: bool, region: str | None) -> None:
    """Erase what is stored about PHONE: its recipient rows keep only their
    status and counts, its clicks and conversions stay without it, and a
    suppression (its hash) keeps it from ever being texted again."""
    from ..sms.subjects import erase_subject, export_subject

    number = _phone(phone, region)
    found = export_subject(number)
    if not yes:
        click.confirm(
            f"Erase {number}: {len(found['recipients'])} recipient rows, {len(found['clicks'])} clicks, "
            f"{len(found['conversions'])} conversions?",
            abort=True,
        )
    counts = erase_subject(number)
    click.echo(f"Erased {number}:")
    click.echo(f"  smstrack_recipients: {counts['recipients']} rows emptied (status and counts kept)")
    click.echo(f"  smstrack_clicks: {counts['clicks']} unlinked (kept, anonymous)")
    click.echo(f"  smstrack_conversions: {counts['conversions']} unlinked (kept, anonymous)")
    click.echo(f"  smstrack_suppressions: {counts['suppressions']} added (hash only)")


@smstrack_cli.command("forget-phones")
@click.option("--dry-run", is_flag=True, help="Only say which campaigns are due.")
def forget_phones_command(dry_run: bool) -> None:
    """Replace recipients' numbers by their keyed hash once their campaign's
    last message is older than SMSTRACK_FORGET_PHONES_AFTER_DAYS."""
    from flask import current_app

    from ..sms.forgetting import forget_due_phones

    app_state()
    if current_app.config[Keys.FORGET_PHONES_AFTER_DAYS] is None:
        click.echo(f"{Keys.FORGET_PHONES_AFTER_DAYS} is not set: no number is forgotten.")
        return
    result = forget_due_phones(dry_run=dry_run)
    verb = "Would forget" if dry_run else "Forgot"
    ids = ", ".join(map(str, result.campaigns)) or "none"
    click.echo(
        f"{verb} {result.recipients} numbers of {len(result.campaigns)} campaigns last sent before "
        f"{result.cutoff:%Y-%m-%d %H:%M} UTC (campaigns: {ids})."
    )
    if result.unsent:
        click.echo(f"  {result.unsent} of them were never sent and can no longer be.")
