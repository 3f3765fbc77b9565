"""SMS campaigns: recipients, variants, message export, link checks, sending."""
from __future__ import annotations

import json
import sys

import click
from marshmallow import ValidationError
from sqlalchemy import func, select

from ..config import Keys
from ..manage import get_campaign
from ..models import Campaign, Recipient
from ..reports.rollups import start_catch_up
from ..schemas import AUDIENCE_SEGMENTS
from .base import app_state, campaign_or_fail, smstrack_cli, validation_error, warn_opt_out_text
from .timing import BEST, best_at
from .channels import require_sms


@smstrack_cli.command("import-recipients")
@click.argument("campaign_id", type=int)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--region", help=f"Region of numbers without a country code (default {Keys.DEFAULT_REGION}).")
@click.option("--keep-columns", is_flag=True, help="Keep only the columns the campaign's messages use as placeholders.")
def import_recipients_command(campaign_id: int, file: str, region: str | None, keep_columns: bool) -> None:
    """Import a campaign's recipients from a CSV file with a phone column.

    Other columns (first_name, city...) are kept for the message's
    placeholders (with --keep-columns only those its templates use); an
    external_id column is kept as is.
    """
    from ..sms.minimise import NoTemplate, used_columns
    from ..sms.recipients import ImportError_, import_recipients, read_csv

    app_state()
    campaign = get_campaign(campaign_id)
    if campaign is None:
        raise click.ClickException(f"no campaign {campaign_id}")
    require_sms(campaign)
    try:
        kept = used_columns(campaign) if keep_columns else None
    except NoTemplate as err:
        raise click.ClickException(f"--keep-columns: {err}") from None
    with click.open_file(file, encoding="utf-8-sig") as f:
        text = f.read()
    lines = max(text.count("\n") - 1, 0) + (0 if text.endswith("\n") else 1)
    try:
        with click.progressbar(length=max(lines, 1), label="Importing recipients") as bar:
            result = import_recipients(
                campaign_id, read_csv(text), region=region, progress=bar.update, keep_columns=kept
            )
    except ImportError_ as err:
        raise click.ClickException(str(err)) from None
    start_catch_up([campaign_id])
    click.echo(f"Imported {result.imported} recipients; {result.merged} duplicates merged; {len(result.errors)} rows left out.")
    if result.suppressed:
        click.echo(f"{result.suppressed} of them opted out and will not be texted.")
    if result.dropped_columns:
        click.echo(f"Columns not stored (no template uses them): {', '.join(result.dropped_columns)}")
    for line, message in result.errors[:50]:
        click.echo(f"  line {line}: {message}", err=True)
    if len(result.errors) > 50:
        click.echo(f"  ... and {len(result.errors) - 50} more", err=True)


@smstrack_cli.command("add-variant")
@click.argument("campaign_id", type=int)
@click.argument("name")
@click.argument("message")
@click.option("--weight", type=int, default=1, show_default=True, help="Relative share of the recipients.")
def add_variant_command(campaign_id: int, name: str, message: str, weight: int) -> None:
    """Add a message variant (A, B...) to a campaign's A/B test."""
    from ..manage import add_variant
    from ..schemas import VariantSchema

    campaign = require_sms(campaign_or_fail(campaign_id))
    try:
        data = VariantSchema().load({"name": name, "message_template": message, "weight": weight})
    except ValidationError as err:
        raise validation_error(err) from None
    if any(v.name == data["name"] for v in campaign.variants):
        raise click.ClickException(f"campaign {campaign_id} already has a variant {data['name']!r}")
    variant = add_variant(campaign, data)
    click.echo(f"Variant {variant.name} added to campaign {campaign.id} (weight {variant.weight}).")
    warn_opt_out_text(data["message_template"])


def _prepare(campaign: Campaign) -> None:
    from ..sms.messages import PrepareError, prepare_messages
    from ..sms.outbox import ready_counts

    r = Recipient.__table__.c
    total = app_state().db.session.execute(
        select(func.count()).where(r.campaign_id == campaign.id, r.status.in_(("pending", "ready")))
    ).scalar_one()
    try:
        with click.progressbar(length=max(total, 1), label="Rendering messages", file=sys.stderr) as bar:
            result = prepare_messages(campaign, progress=bar.update)
    except PrepareError as err:
        raise click.ClickException(str(err)) from None
    ready, segments = ready_counts(campaign.id)
    shares = ", ".join(f"{name or 'message'}: {n}" for name, n in sorted(result.per_variant.items()))
    click.echo(
        f"{result.prepared} messages rendered ({shares or 'none'}); {ready} ready to send, {segments} segments.",
        err=True,
    )
    if campaign.cost_per_segment is not None:
        click.echo(f"Cost: {campaign.cost_per_segment * segments:.4f} {campaign.currency}", err=True)
    if result.suppressed:
        click.echo(f"{result.suppressed} recipients opted out: no message for them.", err=True)
    if result.link_adds_segment:
        click.echo(f"Warning: the short link pushes {result.link_adds_segment} messages into one more segment.", err=True)
    if result.no_consent:
        from ..sms.consent import left_out_message

        click.echo(f"{left_out_message(result.no_consent)}.", err=True)


@smstrack_cli.command("export-messages")
@click.argument("campaign_id", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, allow_dash=True), default="-",
              help="File to write (default: standard output).")
def export_messages_command(campaign_id: int, output: str) -> None:
    """Render a campaign's messages and write them as CSV (phone, message,
    variant) for upload to any SMS platform. The messages then count as sent
    (and are not sent again by ``send``)."""
    from ..reports.export import messages_csv
    from ..sms.outbox import mark_exported, message_rows

    campaign = require_sms(campaign_or_fail(campaign_id))
    warn_opt_out_text(campaign=campaign)
    _prepare(campaign)
    with click.open_file(output, "w", encoding="utf-8") as f:
        for line in messages_csv(message_rows(campaign)):
            f.write(line)
    exported = mark_exported(campaign.id)
    click.echo(f"{exported} messages exported: the reports count them as sent.", err=True)


@smstrack_cli.command("export-recipients")
@click.argument("campaign_id", type=int)
@click.option("--segment", type=click.Choice(AUDIENCE_SEGMENTS), default="all", show_default=True)
@click.option("--variant", help="Only this variant's recipients.")
@click.option("--device", help="Only recipients whose first click came from this device type (mobile, desktop...).")
@click.option("--country", help="Only recipients whose first click came from this country (two letters).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, allow_dash=True), default="-")
def export_recipients_command(campaign_id, segment, variant, device, country, output) -> None:
    """Write the recipients for the next send as CSV, e.g. those who clicked
    and did not convert; the file imports back with import-recipients."""
    from ..reports.audience import audience
    from ..reports.export import audience_csv

    campaign = require_sms(campaign_or_fail(campaign_id))
    members = audience(campaign, segment, variant=variant, device=device, country=country)
    with click.open_file(output, "w", encoding="utf-8") as f:
        for line in audience_csv(members):
            f.write(line)
    click.echo(f"{len(members)} recipients ({segment}).", err=True)


@smstrack_cli.command("check-links")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help=f"Seconds per destination (default {Keys.LINK_CHECK_TIMEOUT}).")
def check_links_command(campaign_id: int, as_json: bool, timeout: float | None) -> None:
    """Test a campaign's links before sending: open each destination as a
    phone would and report errors and warnings.

    Exits with status 1 when any link has an error.
    """
    import sys

    from ..sms.linkcheck import check_campaign_links, count_destinations

    app_state()
    campaign = get_campaign(campaign_id)
    if campaign is None:
        raise click.ClickException(f"no campaign {campaign_id}; list them with the API or the dashboard")
    total = count_destinations(campaign)
    if not total:
        if as_json:
            click.echo("[]")
        else:
            click.echo(f"Campaign {campaign.id} has no links to check; add one with: flask smstrack create-link {campaign.id} URL")
        return
    # With --json, stdout carries the JSON only.
    bar_file = sys.stderr if as_json else None
    with click.progressbar(length=total, label=f"Checking {total} destination(s)", file=bar_file) as bar:
        checks = check_campaign_links(campaign, timeout=timeout, progress=bar.update)
    errors = sum(1 for c in checks if c.verdict == "error")
    if as_json:
        click.echo(json.dumps([c.as_dict() for c in checks], indent=2))
        if errors:
            raise SystemExit(1)
        return
    for check in checks:
        click.echo(f"{check.verdict.upper():<8} {', '.join(check.codes)}  {check.url}")
        if check.status is not None:
            line = f"{check.status} in {check.elapsed_ms} ms"
            if check.redirects:
                line += f" after {check.redirects} redirect{'s' if check.redirects != 1 else ''} -> {check.final_url}"
            click.echo(f"{'':9}{line}")
        elif check.elapsed_ms is not None:
            click.echo(f"{'':9}no answer after {check.elapsed_ms} ms")
        if check.has_snippet is not None:
            click.echo(f"{'':9}snippet: {'yes' if check.has_snippet else 'no'}, mobile viewport: {'yes' if check.has_viewport else 'no'}")
        for problem in check.problems:
            click.echo(f"{'':9}- {problem}")
        for note in check.notes:
            click.echo(f"{'':9}({note})")
    counts = {v: sum(1 for c in checks if c.verdict == v) for v in ("ok", "warning", "error")}
    links = sum(len(c.codes) for c in checks)
    click.echo(
        f"\n{counts['ok']} ok, {counts['warning']} with warnings, {counts['error']} with errors"
        f" ({len(checks)} destination{'s' if len(checks) != 1 else ''}, {links} link{'s' if links != 1 else ''})."
    )
    if errors:
        raise click.ClickException(f"{errors} destination{'s' if errors != 1 else ''} with errors: fix them before sending.")


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"about {seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"about {minutes} min {seconds} s" if seconds else f"about {minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes} min"


def _unknown_note(count: int, retried: bool) -> str:
    note = f"{count} message{'s' if count != 1 else ''} in an unknown state: "
    if retried:
        return note + "sent moments ago, they may still be on their way; run again in a minute with --retry-unknown."
    return note + (
        "a run was interrupted before Twilio answered. Run again with --retry-unknown to ask Twilio"
        " about them and send the ones it does not have."
    )


def _held_lines(groups, now) -> None:
    for group in groups[:10]:
        click.echo(f"  {group.describe(now)}")
    if len(groups) > 10:
        click.echo(f"  ... and {sum(g.count for g in groups[10:])} more at later times")


def _waiting(groups, until, now) -> None:
    """Before the send sleeps: who waits, until when."""
    held = sum(g.count for g in groups)
    click.echo(
        f"\n{held} recipient{'s' if held != 1 else ''} held; waiting until {until:%Y-%m-%d %H:%M} UTC"
        f" ({_duration((until - now).total_seconds())}):"
    )
    _held_lines(groups, now)


def _held(groups, now, skip_quiet: bool) -> None:
    """After the send: who was left ready, and when to run again."""
    held = sum(g.count for g in groups)
    first = min((g.until for g in groups if g.until is not None), default=None)
    then = f"; run the same command again after {first:%Y-%m-%d %H:%M} UTC" if first is not None else ""
    why = "" if skip_quiet else " (never outside quiet hours in all of their time zones)"
    click.echo(f"{held} recipient{'s' if held != 1 else ''} left ready{why}{then}:")
    _held_lines(groups, now)


@smstrack_cli.command("send")
@click.argument("campaign_id", type=int)
@click.option(
    "--rate", type=click.FloatRange(min=0, min_open=True),
    help=f"Messages per second (default {Keys.SEND_RATE}, 1: a long code's limit).",
)
@click.option(
    "--retry-unknown", is_flag=True,
    help="First settle messages an interrupted run left in an unknown state: adopt the ones the provider has, send the others.",
)
@click.option(
    "--at", "at_text", metavar="HH:MM|best",
    help="Send each recipient at the next HH:MM on its own clock (its time zone's local time); 'best' picks"
         " the local hour your past campaigns did best at (see best-time).",
)
@click.option(
    "--skip-quiet", is_flag=True,
    help="Do not wait for quiet hours (or --at) to end: leave those recipients ready for a later run.",
)
@click.option("--yes", is_flag=True, help="Send without asking for confirmation.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help=f"With {Keys.REDIS_URL}: follow the queued send until it ends, or return at once.")
def send_command(
    campaign_id: int, rate: float | None, retry_unknown: bool, at_text: str | None, skip_quiet: bool, yes: bool,
    wait: bool,
) -> None:
    """Send a campaign's messages through its provider (Twilio, ClickSend).

    Safe to run again: a message is never sent twice, and a run that was
    interrupted goes on where it stopped. With SMSTRACK_REDIS_URL the send
    is a job for `flask smstrack worker`, followed here until it ends. Nothing is sent inside the quiet
    hours (SMSTRACK_QUIET_HOURS) of the recipient's time zone: the send
    waits for them to end, or with --skip-quiet leaves those recipients for
    a later run.
    """
    from ..schemas import format_money
    from ..sms.consent import left_out_message, without_consent
    from ..sms.messages import PrepareError, prepare_messages
    from ..sms.opt_out_text import check_opt_out_text
    from ..sms.outbox import send_plan
    from ..sms.providers import SendError, campaign_provider, provider_settings
    from ..sms.quiet import parse_clock
    from ..sms.schedule import Schedule, app_clock
    from ..sms.sending import send_campaign, send_rate

    app_state()
    campaign = get_campaign(campaign_id)
    if campaign is None:
        raise click.ClickException(f"no campaign {campaign_id}")
    require_sms(campaign)
    if at_text is not None and at_text.strip().lower() == BEST:
        at_text = best_at(campaign)
    try:
        at = parse_clock(at_text) if at_text is not None else None
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--at") from None
    try:
        check_opt_out_text(campaign)
        provider = campaign_provider(campaign)
        settings = provider_settings(provider)
        pace = send_rate(rate)
        clock = app_clock()
        schedule = Schedule.for_app(at, clock.now())
        prepared = prepare_messages(campaign)
    except (SendError, PrepareError) as err:
        raise click.ClickException(str(err)) from None
    warn_opt_out_text(campaign=campaign)
    if prepared.suppressed:
        click.echo(f"{prepared.suppressed} recipient{'s' if prepared.suppressed != 1 else ''} opted out: not texted.")
    plan = send_plan(campaign)
    todo = plan.messages + (plan.unknown if retry_unknown else 0)
    if not todo:
        click.echo(f"Nothing to send: campaign {campaign.id} has no message ready.")
        left_out = without_consent(campaign.id)
        if left_out:
            click.echo(f"{left_out_message(left_out)}.")
        if plan.unknown:
            click.echo(_unknown_note(plan.unknown, False))
        return
    cost = f", {format_money(plan.cost)} {plan.currency}" if plan.cost is not None else ""
    question = (
        f"Send {plan.messages} message{'s' if plan.messages != 1 else ''} ({plan.segments} segment"
        f"{'s' if plan.segments != 1 else ''}{cost}) of campaign {campaign.id} ({campaign.name}) from"
        f" {settings.sender}, at {pace:g} per second ({_duration(todo / pace)})?"
    )
    if retry_unknown and plan.unknown:
        title = "ClickSend" if provider == "clicksend" else "Twilio"
        question = f"{question[:-1]}, after checking {plan.unknown} in an unknown state with {title}?"
    if schedule.active:
        timing = f" at {at:%H:%M}" if at is not None else ""
        quiet = f", outside the quiet hours {schedule.hours}" if schedule.hours is not None else ""
        question = f"{question[:-1]},{timing} in each recipient's time zone{quiet}?"
    if yes:
        click.echo(question[:-1] + ".")
    else:
        click.confirm(question, abort=True)
    if app_state().jobs is not None and app_state().jobs.queued:
        from .worker import send_queued

        options = {"rate": pace, "retry_unknown": retry_unknown, "skip_quiet": skip_quiet, "at": at_text}
        return send_queued(campaign.id, todo, options, wait)
    try:
        with click.progressbar(length=todo, label="Sending") as bar:
            result = send_campaign(
                campaign, progress=bar.update, rate=pace, retry_unknown=retry_unknown, skip_quiet=skip_quiet,
                at=at, clock=clock, on_hold=lambda groups, until: _waiting(groups, until, clock.now()),
            )
    except (SendError, PrepareError) as err:
        raise click.ClickException(str(err)) from None
    line = f"Sent {result.sent} message{'s' if result.sent != 1 else ''} ({result.segments} segments)"
    if result.reconciled:
        line += f"; {result.reconciled} found already sent at {'ClickSend' if provider == 'clicksend' else 'Twilio'}"
    click.echo(f"{line}; {len(result.failed)} failed.")
    for failure in result.failed[:50]:
        click.echo(f"  {failure.phone}: error {failure.code}: {failure.message}", err=True)
    if len(result.failed) > 50:
        click.echo(f"  ... and {len(result.failed) - 50} more", err=True)
    if result.suppressed:
        click.echo(f"{result.suppressed} not sent: the number opted out during the send.")
    if result.skipped:
        click.echo(f"{result.skipped} left to another send running at the same time.")
    if result.no_consent:
        click.echo(f"{left_out_message(result.no_consent)}.")
    if result.held:
        _held(result.held, clock.now(), skip_quiet)
    if result.unknown:
        click.echo(_unknown_note(result.unknown, retry_unknown))
    if result.stopped:
        left = send_plan(campaign).messages
        if left:
            click.echo(f"{left} message{'s' if left != 1 else ''} not sent yet: run the same command again to send them.")
        raise click.ClickException(f"stopped: {result.stopped}")
