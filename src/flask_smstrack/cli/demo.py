"""``flask smstrack ...`` commands."""
from __future__ import annotations

import json
import secrets
import sys

import click
from flask import current_app
from flask.cli import AppGroup
from marshmallow import ValidationError
from sqlalchemy import func, select

from ..auth import create_api_key, create_user, find_user
from ..db.migrate import current_revision, head_revision, upgrade
from ..manage import CodeTaken, create_campaign, create_link, get_campaign, short_url
from ..models import Campaign, Recipient, User
from ..reports.campaign import campaign_report
from ..schemas import AUDIENCE_SEGMENTS, CampaignSchema, LinkSchema
from ..state import get_state
from ..tracking.clicks import replay_spool, spooled_count

smstrack_cli = AppGroup("smstrack", help="SMS link tracking: database, users, campaigns, reports.")


def _state():
    try:
        return get_state()
    except RuntimeError as err:
        raise click.ClickException(str(err)) from None


def _validation_error(err: ValidationError) -> click.ClickException:
    lines = [
        f"{field}: {' '.join(m if isinstance(m, str) else json.dumps(m) for m in msgs)}"
        for field, msgs in err.messages.items()
    ]
    return click.ClickException("invalid input:\n  " + "\n  ".join(lines))


def _owner(email: str | None) -> str | None:
    if email is None:
        return None
    user = find_user(email)
    if user is None:
        raise click.ClickException(f"no user {email}; create one with: flask smstrack create-user {email} --password ...")
    return str(user.id)


@smstrack_cli.command("init-db")
def init_db_command() -> None:
    """Create the smstrack tables, or upgrade them to this version."""
    _state()
    before = current_revision()
    upgrade()
    after = current_revision()
    if before == after:
        click.echo(f"Database is up to date (revision {after}).")
    else:
        click.echo(f"Database upgraded from {before or 'empty'} to {after}.")


@smstrack_cli.command("create-user")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="At least 8 characters.")
@click.option("--admin", is_flag=True, help="Admins see every campaign.")
def create_user_command(email: str, password: str, admin: bool) -> None:
    """Create a dashboard and API user."""
    _state()
    try:
        user = create_user(email, password, is_admin=admin)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"Created {'admin' if admin else 'user'} {user.email} (id {user.id}).")


@smstrack_cli.command("create-api-key")
@click.argument("email")
@click.option("--name", help="A note to recognise the key by.")
def create_api_key_command(email: str, name: str | None) -> None:
    """Create an API key for a user and print it (it is shown only once)."""
    _state()
    user = find_user(email)
    if user is None:
        raise click.ClickException(f"no user {email}; create one with: flask smstrack create-user {email}")
    key, _ = create_api_key(str(user.id), is_admin=user.is_admin, name=name)
    click.echo(key)
    click.echo("Keep this key: it cannot be shown again. Send it as 'Authorization: Bearer <key>'.", err=True)


@smstrack_cli.command("list-api-keys")
@click.argument("email")
def list_api_keys_command(email: str) -> None:
    """List a user's API keys (their first characters only)."""
    from ..models import ApiKey

    state = _state()
    owner = _owner(email)
    keys = state.db.session.query(ApiKey).filter_by(owner_id=owner).order_by(ApiKey.id).all()
    if not keys:
        click.echo(f"{email} has no API keys.")
    for key in keys:
        status = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        used = f"last used {key.last_used_at:%Y-%m-%d %H:%M} UTC" if key.last_used_at else "never used"
        click.echo(f"{key.prefix}...  {status}, {used}, created {key.created_at:%Y-%m-%d}{'  ' + key.name if key.name else ''}")


@smstrack_cli.command("revoke-api-key")
@click.argument("prefix")
def revoke_api_key_command(prefix: str) -> None:
    """Revoke an API key by its first characters, as list-api-keys shows them."""
    from ..auth import KEY_PREFIX, revoke_api_keys

    _state()
    if not prefix.startswith(KEY_PREFIX) or len(prefix) < len(KEY_PREFIX) + 6:
        raise click.ClickException(f"give the key's first {len(KEY_PREFIX) + 6} characters, e.g. {KEY_PREFIX}AbC123")
    count = revoke_api_keys(prefix)
    if not count:
        raise click.ClickException(f"no active key starts with {prefix}; see flask smstrack list-api-keys EMAIL")
    click.echo(f"Revoked {count} key(s) starting with {prefix[: len(KEY_PREFIX) + 6]}.")


@smstrack_cli.command("create-campaign")
@click.option("--name", required=True)
@click.option("--currency", required=True, help="ISO 4217 code, e.g. USD.")
@click.option("--cost", help="Total cost of the send, e.g. 12.50.")
@click.option("--cost-per-message", help="Price of one message, e.g. 0.0079.")
@click.option("--cost-per-segment", help="Price of one SMS segment, e.g. 0.0079 (with imported recipients).")
@click.option("--message", "message_template", help="The message, with {link} and {first_name}-style placeholders.")
@click.option("--sent", type=int, help="How many messages were sent.")
@click.option("--owner", help="Email of the owning user.")
def create_campaign_command(name, currency, cost, cost_per_message, cost_per_segment, message_template, sent, owner) -> None:
    """Create a campaign."""
    _state()
    raw = {
        "name": name, "currency": currency, "cost": cost, "cost_per_message": cost_per_message,
        "cost_per_segment": cost_per_segment, "message_template": message_template, "sent": sent,
    }
    try:
        data = CampaignSchema().load({k: v for k, v in raw.items() if v is not None})
    except ValidationError as err:
        raise _validation_error(err) from None
    campaign = create_campaign(data, _owner(owner))
    click.echo(f"Campaign {campaign.id} created: {campaign.name}")


@smstrack_cli.command("create-link")
@click.argument("campaign_id", type=int)
@click.argument("destination_url")
@click.option("--code", help="A custom short code (3-64 of A-Z a-z 0-9 _ -).")
@click.option("--no-click-id", is_flag=True, help="Do not append the click id to the destination.")
def create_link_command(campaign_id: int, destination_url: str, code: str | None, no_click_id: bool) -> None:
    """Create a tracked link in a campaign and print its short URL."""
    _state()
    campaign = get_campaign(campaign_id)
    if campaign is None:
        raise click.ClickException(f"no campaign {campaign_id}; list them with the API or the dashboard")
    raw = {"destination_url": destination_url, "append_click_id": not no_click_id}
    if code:
        raw["code"] = code
    try:
        data = LinkSchema().load(raw)
        link = create_link(campaign, data)
    except ValidationError as err:
        raise _validation_error(err) from None
    except CodeTaken:
        raise click.ClickException(f"the code {code!r} is already in use; choose another") from None
    click.echo(f"Link {link.code} -> {link.destination_url}")
    click.echo(short_url(link))


@smstrack_cli.command("report")
@click.argument("campaign_id", type=int)
def report_command(campaign_id: int) -> None:
    """Print a campaign's report as JSON."""
    _state()
    campaign = get_campaign(campaign_id)
    if campaign is None:
        raise click.ClickException(f"no campaign {campaign_id}")
    click.echo(json.dumps(campaign_report(campaign).as_dict(), indent=2))


@smstrack_cli.command("replay-spool")
def replay_spool_command() -> None:
    """Write clicks that were spooled while the database was unreachable."""
    _state()
    total = spooled_count()
    if not total:
        click.echo("The spool is empty.")
        return
    with click.progressbar(length=total, label="Replaying clicks") as bar:
        written, present = replay_spool(progress=bar.update)
    click.echo(f"Wrote {written} clicks; {present} were already stored.")


@smstrack_cli.command("quickstart")
@click.option("--admin-email", default="admin@example.com", show_default=True)
@click.option("--base-url", default="http://127.0.0.1:8000", show_default=True)
@click.option("--demo", is_flag=True, help="Also create a demo campaign full of data, once.")
@click.pass_context
def quickstart_command(ctx: click.Context, admin_email: str, base_url: str, demo: bool) -> None:
    """Set up a new install: tables, a first admin, a sample campaign and link."""
    state = _state()
    if current_revision() != head_revision():
        upgrade()
        click.echo("Database tables created.")
    db = state.db
    if db.session.query(User.id).first() is None:
        password = secrets.token_urlsafe(12)
        create_user(admin_email, password, is_admin=True)
        click.echo(f"Admin created. Log in at {base_url}{current_app.config['SMSTRACK_URL_PREFIX']}/login")
        click.echo(f"  email:    {admin_email}")
        click.echo(f"  password: {password}   (shown once; keep it)")
    else:
        click.echo(f"Log in at {base_url}{current_app.config['SMSTRACK_URL_PREFIX']}/login with your user.")
    if db.session.query(Campaign.id).first() is None:
        admin = db.session.query(User).filter_by(is_admin=True).order_by(User.id).first()
        campaign = create_campaign(
            CampaignSchema().load({"name": "Sample campaign", "currency": "USD", "cost_per_message": "0.0079", "sent": 1000}),
            str(admin.id) if admin else None,
        )
        link = create_link(campaign, LinkSchema().load({"destination_url": "https://example.com/?utm_source=sms"}))
        click.echo(f"Sample tracked link: {base_url.rstrip('/')}{current_app.config['SMSTRACK_LINK_PREFIX']}/{link.code}")
        if demo:
            ctx.invoke(demo_command)
        else:
            click.echo("See a full dashboard at once: flask --app wsgi smstrack demo (or make run DEMO=1)")


@smstrack_cli.command("import-recipients")
@click.argument("campaign_id", type=int)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--region", help="Region of numbers without a country code (default SMSTRACK_DEFAULT_REGION).")
def import_recipients_command(campaign_id: int, file: str, region: str | None) -> None:
    """Import a campaign's recipients from a CSV file with a phone column.

    Other columns (first_name, city...) are kept for the message's
    placeholders; an external_id column is kept as is.
    """
    from ..sms.recipients import ImportError_, import_recipients, read_csv

    _state()
    if get_campaign(campaign_id) is None:
        raise click.ClickException(f"no campaign {campaign_id}")
    with click.open_file(file, encoding="utf-8-sig") as f:
        text = f.read()
    lines = max(text.count("\n") - 1, 0) + (0 if text.endswith("\n") else 1)
    try:
        with click.progressbar(length=max(lines, 1), label="Importing recipients") as bar:
            result = import_recipients(campaign_id, read_csv(text), region=region, progress=bar.update)
    except ImportError_ as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"Imported {result.imported} recipients; {result.merged} duplicates merged; {len(result.errors)} rows left out.")
    for line, message in result.errors[:50]:
        click.echo(f"  line {line}: {message}", err=True)
    if len(result.errors) > 50:
        click.echo(f"  ... and {len(result.errors) - 50} more", err=True)


def _campaign_or_fail(campaign_id: int) -> Campaign:
    _state()
    campaign = get_campaign(campaign_id)
    if campaign is None:
        raise click.ClickException(f"no campaign {campaign_id}")
    return campaign


@smstrack_cli.command("add-variant")
@click.argument("campaign_id", type=int)
@click.argument("name")
@click.argument("message")
@click.option("--weight", type=int, default=1, show_default=True, help="Relative share of the recipients.")
def add_variant_command(campaign_id: int, name: str, message: str, weight: int) -> None:
    """Add a message variant (A, B...) to a campaign's A/B test."""
    from ..manage import add_variant
    from ..schemas import VariantSchema

    campaign = _campaign_or_fail(campaign_id)
    try:
        data = VariantSchema().load({"name": name, "message_template": message, "weight": weight})
    except ValidationError as err:
        raise _validation_error(err) from None
    if any(v.name == data["name"] for v in campaign.variants):
        raise click.ClickException(f"campaign {campaign_id} already has a variant {data['name']!r}")
    variant = add_variant(campaign, data)
    click.echo(f"Variant {variant.name} added to campaign {campaign.id} (weight {variant.weight}).")


def _prepare(campaign: Campaign) -> None:
    from ..sms.messages import PrepareError, prepare_messages, ready_counts

    r = Recipient.__table__.c
    total = _state().db.session.execute(
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
    if result.link_adds_segment:
        click.echo(f"Warning: the short link pushes {result.link_adds_segment} messages into one more segment.", err=True)


@smstrack_cli.command("export-messages")
@click.argument("campaign_id", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, allow_dash=True), default="-",
              help="File to write (default: standard output).")
def export_messages_command(campaign_id: int, output: str) -> None:
    """Render a campaign's messages and write them as CSV (phone, message,
    variant) for upload to any SMS platform. The messages then count as sent
    (and are not sent again by ``send``)."""
    from ..reports.export import messages_csv
    from ..sms.messages import mark_exported, message_rows

    campaign = _campaign_or_fail(campaign_id)
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
    from ..reports.campaign import audience
    from ..reports.export import audience_csv

    campaign = _campaign_or_fail(campaign_id)
    members = audience(campaign, segment, variant=variant, device=device, country=country)
    with click.open_file(output, "w", encoding="utf-8") as f:
        for line in audience_csv(members):
            f.write(line)
    click.echo(f"{len(members)} recipients ({segment}).", err=True)


@smstrack_cli.command("rollup")
@click.argument("campaign_ids", nargs=-1, type=int)
def rollup_command(campaign_ids: tuple[int, ...]) -> None:
    """Bring the report rollups of campaigns (default: all) up to date.

    Reports do this on their own; run it from cron to keep page views fast
    after large imports.
    """
    from ..reports.rollups import refresh

    state = _state()
    query = state.db.session.query(Campaign).order_by(Campaign.id)
    if campaign_ids:
        query = query.filter(Campaign.id.in_(campaign_ids))
    campaigns = query.all()
    missing = sorted(set(campaign_ids) - {c.id for c in campaigns})
    if missing:
        raise click.ClickException(f"no campaign {', '.join(map(str, missing))}")
    with click.progressbar(campaigns, label="Rolling up campaigns", item_show_func=lambda c: c and c.name) as bar:
        for campaign in bar:
            refresh(campaign)
    click.echo(f"Rollups up to date for {len(campaigns)} campaign(s).")


@smstrack_cli.command("demo")
@click.option("--clicks", type=click.IntRange(1, 10_000_000), default=6000, show_default=True, help="How many clicks to make.")
@click.option("--owner", help="Email of the owning user (default: the first admin).")
@click.option("--seed", type=int, help="Make the same data again (default: a random seed, printed).")
@click.option("--no-sms", is_flag=True, help="Skip the second demo, an A/B test sent to imported recipients.")
def demo_command(clicks: int, owner: str | None, seed: int | None, no_sms: bool) -> None:
    """Create a demo campaign with a week of realistic clicks and conversions,
    and a second one: an A/B test sent to 2,000 imported recipients, with
    delivery receipts, forwards and a verdict."""
    from ..demo.spring_sale import create_demo_campaign, default_owner_id
    from ..schemas import format_money

    _state()
    owner_id = _owner(owner) if owner is not None else default_owner_id()
    if seed is None:
        seed = secrets.randbelow(1_000_000)
    with click.progressbar(length=clicks, label="Creating demo clicks") as bar:
        campaign = create_demo_campaign(clicks=clicks, owner_id=owner_id, seed=seed, progress=bar.update)
    report = campaign_report(campaign)
    revenue = ", ".join(f"{format_money(v)} {cur}" for cur, v in sorted(report.revenue.items())) or "none"
    click.echo(f"Campaign {campaign.id} created: {campaign.name} (seed {seed})")
    click.echo(f"  clicks:      {report.clicks} human ({report.unique_clicks} unique), {report.previews} previews, {report.bots} bots")
    click.echo(f"  conversions: {report.conversions}, revenue {revenue}")
    click.echo(f"  dashboard:   {current_app.config['SMSTRACK_URL_PREFIX']}/campaigns/{campaign.id}")
    if not no_sms:
        _demo_sms(owner_id, seed)


def _demo_sms(owner_id: str | None, seed: int) -> None:
    """The A/B test demo campaign, and what it shows."""
    from ..demo.ab_test import RECIPIENTS, STEPS_PER_RECIPIENT, create_demo_sms_campaign
    from ..reports.campaign import CampaignData, variant_test
    from ..schemas import format_money

    with click.progressbar(length=RECIPIENTS * STEPS_PER_RECIPIENT, label="Creating the A/B test demo") as bar:
        campaign = create_demo_sms_campaign(owner_id=owner_id, seed=seed, progress=bar.update)
    data = CampaignData(campaign)
    report = data.report
    no_receipt = (report.sent or 0) - (report.delivered or 0) - (report.undelivered or 0)
    revenue = ", ".join(f"{format_money(v)} {cur}" for cur, v in sorted(report.revenue.items())) or "none"
    cost = f"{format_money(report.cost)} {campaign.currency}" if report.cost is not None else "unknown"
    click.echo(f"Campaign {campaign.id} created: {campaign.name} (seed {seed})")
    click.echo(
        f"  messages:    {report.sent} sent ({report.segments} segments, {cost}), {report.delivered} delivered,"
        f" {report.undelivered} undelivered, {no_receipt} without a receipt"
    )
    click.echo(
        f"  clicks:      {report.clicks} human ({report.unique_clicks} unique), {report.forwards} forwards,"
        f" {report.previews} previews"
    )
    for note in variant_test(data).notes:
        click.echo(f"  A/B test:    {note}")
    click.echo(f"  conversions: {report.conversions}, revenue {revenue}")
    click.echo(f"  dashboard:   {current_app.config['SMSTRACK_URL_PREFIX']}/campaigns/{campaign.id}")


@smstrack_cli.command("check-links")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds per destination (default SMSTRACK_LINK_CHECK_TIMEOUT).")
def check_links_command(campaign_id: int, as_json: bool, timeout: float | None) -> None:
    """Test a campaign's links before sending: open each destination as a
    phone would and report errors and warnings.

    Exits with status 1 when any link has an error.
    """
    import sys

    from ..sms.linkcheck import check_campaign_links, count_destinations

    _state()
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


@smstrack_cli.command("send")
@click.argument("campaign_id", type=int)
@click.option(
    "--rate", type=click.FloatRange(min=0, min_open=True),
    help="Messages per second (default SMSTRACK_SEND_RATE, 1: a long code's limit).",
)
@click.option(
    "--retry-unknown", is_flag=True,
    help="First settle messages an interrupted run left in an unknown state: adopt the ones Twilio has, send the others.",
)
@click.option("--yes", is_flag=True, help="Send without asking for confirmation.")
def send_command(campaign_id: int, rate: float | None, retry_unknown: bool, yes: bool) -> None:
    """Send a campaign's messages through Twilio.

    Safe to run again: a message is never sent twice, and a run that was
    interrupted goes on where it stopped.
    """
    from ..schemas import format_money
    from ..sms.messages import PrepareError, prepare_messages
    from ..sms.sending import (
        SendError,
        send_campaign,
        send_plan,
        send_rate,
        twilio_settings,
    )

    _state()
    campaign = get_campaign(campaign_id)
    if campaign is None:
        raise click.ClickException(f"no campaign {campaign_id}")
    try:
        settings = twilio_settings()
        pace = send_rate(rate)
        prepare_messages(campaign)
    except (SendError, PrepareError) as err:
        raise click.ClickException(str(err)) from None
    plan = send_plan(campaign)
    todo = plan.messages + (plan.unknown if retry_unknown else 0)
    if not todo:
        click.echo(f"Nothing to send: campaign {campaign.id} has no message ready.")
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
        question = f"{question[:-1]}, after checking {plan.unknown} in an unknown state with Twilio?"
    if yes:
        click.echo(question[:-1] + ".")
    else:
        click.confirm(question, abort=True)
    try:
        with click.progressbar(length=todo, label="Sending") as bar:
            result = send_campaign(campaign, progress=bar.update, rate=pace, retry_unknown=retry_unknown)
    except (SendError, PrepareError) as err:
        raise click.ClickException(str(err)) from None
    line = f"Sent {result.sent} message{'s' if result.sent != 1 else ''} ({result.segments} segments)"
    if result.reconciled:
        line += f"; {result.reconciled} found already sent at Twilio"
    click.echo(f"{line}; {len(result.failed)} failed.")
    for failure in result.failed[:50]:
        click.echo(f"  {failure.phone}: error {failure.code}: {failure.message}", err=True)
    if len(result.failed) > 50:
        click.echo(f"  ... and {len(result.failed) - 50} more", err=True)
    if result.skipped:
        click.echo(f"{result.skipped} left to another send running at the same time.")
    if result.unknown:
        click.echo(_unknown_note(result.unknown, retry_unknown))
    if result.stopped:
        left = send_plan(campaign).messages
        if left:
            click.echo(f"{left} message{'s' if left != 1 else ''} not sent yet: run the same command again to send them.")
        raise click.ClickException(f"stopped: {result.stopped}")
