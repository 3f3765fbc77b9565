"""Database, campaigns, links, reports, rollups and the spool."""
from __future__ import annotations

import json
import secrets

import click
from flask import current_app
from marshmallow import ValidationError

from ..auth import create_user
from ..config import SMS_PROVIDERS, Keys
from ..db.migrate import current_revision, head_revision, upgrade
from ..manage import CodeTaken, create_campaign, create_link, get_campaign, short_url
from ..models import Campaign, Link, User
from ..models.channels import CHANNELS
from ..reports.campaign import campaign_report
from ..reports.rollups import start_catch_up
from ..schemas import CampaignSchema, LinkSchema
from ..tracking.spool import SpoolUnavailable, replay_counts, spooled_count
from .base import app_state, find_owner, smstrack_cli, validation_error, warn_opt_out_text
from .demo import demo_command

#: Where ``make run`` serves: the address of the short links the commands
#: print when ``SMSTRACK_BASE_URL`` is not set.
LOCAL_BASE_URL = "http://127.0.0.1:8000"


def link_url(link: Link, base_url: str | None = None) -> str:
    """The full short URL of ``link`` as the commands print it: on
    ``base_url``, else ``SMSTRACK_BASE_URL``, else ``LOCAL_BASE_URL``."""
    return short_url(link, base_url or current_app.config[Keys.BASE_URL] or LOCAL_BASE_URL)


@smstrack_cli.command("init-db")
def init_db_command() -> None:
    """Create the smstrack tables, or upgrade them to this version."""
    app_state()
    before = current_revision()
    upgrade()
    after = current_revision()
    if before == after:
        click.echo(f"Database is up to date (revision {after}).")
    else:
        click.echo(f"Database upgraded from {before or 'empty'} to {after}.")


@smstrack_cli.command("create-campaign")
@click.option("--name", required=True)
@click.option("--currency", required=True, help="ISO 4217 code, e.g. USD.")
@click.option("--channel", type=click.Choice(CHANNELS), default="sms", show_default=True,
              help="Where the campaign runs; messages, recipients and sending are for sms only.")
@click.option("--cost", help="Total cost of the send, e.g. 12.50.")
@click.option("--cost-per-message", help="Price of one message, e.g. 0.0079.")
@click.option("--cost-per-segment", help="Price of one SMS segment, e.g. 0.0079 (with imported recipients).")
@click.option("--message", "message_template", help="The message, with {link} and {first_name}-style placeholders.")
@click.option("--sent", type=int, help="How many messages were sent.")
@click.option("--owner", help="Email of the owning user.")
@click.option("--fallback-url", help="Where its disabled or expired links send visitors.")
@click.option("--provider", type=click.Choice(SMS_PROVIDERS), help=f"Who sends its messages (default {Keys.SMS_PROVIDER}).")
@click.option(
    "--verified-revenue-only", is_flag=True,
    help="Profit, ROI, ROAS, EPC and AOV count verified revenue only (not the browsers' unverified reports).",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only the new campaign's id, e.g. CAMPAIGN=$(... --quiet).")
def create_campaign_command(
    name, currency, channel, cost, cost_per_message, cost_per_segment, message_template, sent, owner, fallback_url,
    verified_revenue_only, quiet, provider=None,
) -> None:
    """Create a campaign and print its id (the CAMPAIGN_ID of the other commands)."""
    app_state()
    raw = {
        "name": name, "currency": currency, "channel": channel, "cost": cost, "cost_per_message": cost_per_message,
        "cost_per_segment": cost_per_segment, "message_template": message_template, "sent": sent,
        "verified_revenue_only": verified_revenue_only, "fallback_url": fallback_url, "provider": provider,
    }
    try:
        data = CampaignSchema().load({k: v for k, v in raw.items() if v is not None})
    except ValidationError as err:
        raise validation_error(err) from None
    campaign = create_campaign(data, find_owner(owner))
    click.echo(campaign.id if quiet else f"Campaign {campaign.id} created: {campaign.name}")
    if campaign.message_template:
        warn_opt_out_text(campaign.message_template)


@smstrack_cli.command("create-link")
@click.argument("campaign_id", type=int)
@click.argument("destination_url")
@click.option("--code", help="A custom short code (3-64 of A-Z a-z 0-9 _ -).")
@click.option("--no-click-id", is_flag=True, help="Do not append the click id to the destination.")
def create_link_command(campaign_id: int, destination_url: str, code: str | None, no_click_id: bool) -> None:
    """Create a tracked link in a campaign and print its short URL (on
    SMSTRACK_BASE_URL, else on http://127.0.0.1:8000, where make run serves)."""
    app_state()
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
        raise validation_error(err) from None
    except CodeTaken:
        raise click.ClickException(f"the code {code!r} is already in use; choose another") from None
    click.echo(f"Link {link.code} -> {link.destination_url}")
    click.echo(link_url(link))


@smstrack_cli.command("report")
@click.argument("campaign_id", type=int)
def report_command(campaign_id: int) -> None:
    """Print a campaign's report as JSON."""
    app_state()
    campaign = get_campaign(campaign_id)
    if campaign is None:
        raise click.ClickException(f"no campaign {campaign_id}")
    click.echo(json.dumps(campaign_report(campaign).as_dict(), indent=2))


@smstrack_cli.command("replay-spool")
def replay_spool_command() -> None:
    """Write the clicks and conversions spooled while the database was
    unreachable (each process also does it by itself, in the background)."""
    app_state()
    total = spooled_count()
    if not total:
        click.echo("The spool is empty.")
        return
    try:
        with click.progressbar(length=total, label="Replaying the spool") as bar:
            counts = replay_counts(progress=bar.update)
    except SpoolUnavailable as err:
        raise click.ClickException(f"the database does not answer yet ({err}); nothing is lost, try again") from None
    line = f"Wrote {counts['written clicks']} clicks"
    if counts["written conversions"] or counts["written landings"]:
        line += f", {counts['written conversions']} conversions and {counts['written landings']} landings"
    line += f"; {counts['present']} were already stored."
    if counts["rejected"]:
        line += f" {counts['rejected']} could not be stored (each is in the log, whole)."
    click.echo(line)
    if counts["written clicks"]:
        # Late clicks are added to the rollups as they are written; this
        # catches up the campaigns whose cut is behind.
        start_catch_up()


@smstrack_cli.command("quickstart")
@click.option("--admin-email", default="admin@example.com", show_default=True)
@click.option("--base-url", default=LOCAL_BASE_URL, show_default=True)
@click.option("--demo", is_flag=True, help="Also create the demo campaigns, full of data, once.")
@click.pass_context
def quickstart_command(ctx: click.Context, admin_email: str, base_url: str, demo: bool) -> None:
    """Set up a new install: tables and a first admin; with --demo, the
    demo campaigns. Says what to do first."""
    state = app_state()
    if current_revision() != head_revision():
        upgrade()
        click.echo("Database tables created.")
    db = state.db
    dashboard = f"{base_url.rstrip('/')}{current_app.config[Keys.URL_PREFIX]}"
    login_url = f"{dashboard}/login"
    if db.session.query(User.id).first() is None:
        password = secrets.token_urlsafe(12)
        create_user(admin_email, password, is_admin=True)
        click.echo(f"Admin created. Log in at {login_url}")
        click.echo(f"  email:    {admin_email}")
        click.echo(f"  password: {password}   (shown once; keep it)")
    else:
        # Existing users and their passwords are left alone; a lost
        # password is set again from the command line.
        click.echo(f"Log in at {login_url} with your user.")
        click.echo("Lost the password? flask --app wsgi smstrack set-password EMAIL")
    if db.session.query(Campaign.id).first() is not None:
        return
    if demo:
        ctx.invoke(demo_command)
        return
    # A new install starts empty: a made-up campaign would only show
    # made-up numbers (a -100% ROI). Say what to do first instead.
    click.echo("No campaign yet. First steps:")
    click.echo(f"  create one:    {dashboard}/campaigns/new")
    click.echo("  or see a full dashboard at once: make run DEMO=1 (or: flask --app wsgi smstrack demo)")


def _rollups(campaign_ids: tuple[int, ...]) -> None:
    from ..reports.rollups import catch_up

    state = app_state()
    query = state.db.session.query(Campaign.id).order_by(Campaign.id)
    if campaign_ids:
        query = query.filter(Campaign.id.in_(campaign_ids))
    ids = [i for (i,) in query]
    missing = sorted(set(campaign_ids) - set(ids))
    if missing:
        raise click.ClickException(f"no campaign {', '.join(map(str, missing))}")
    with click.progressbar(length=len(ids), label="Rolling up campaigns") as bar:
        catch_up(ids if campaign_ids else None, progress=bar.update)
    click.echo(f"Rollups up to date for {len(ids)} campaign(s).")


@smstrack_cli.command("rollups")
@click.argument("campaign_ids", nargs=-1, type=int)
def rollups_command(campaign_ids: tuple[int, ...]) -> None:
    """Bring the report rollups of campaigns (default: all) up to date.

    Reports read the rollups and count the newer rows live; the worker runs
    this after imports and every few minutes. Run it yourself after loading
    rows into the database by other means, to keep reports fast.
    """
    _rollups(campaign_ids)


@smstrack_cli.command("rollup", hidden=True)
@click.argument("campaign_ids", nargs=-1, type=int)
def rollup_command(campaign_ids: tuple[int, ...]) -> None:
    """The former name of ``rollups``."""
    _rollups(campaign_ids)
