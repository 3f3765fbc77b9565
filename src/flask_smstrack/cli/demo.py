"""The demo campaigns: flask smstrack demo."""
from __future__ import annotations

import secrets

import click
from flask import current_app

from ..config import Keys
from ..reports.campaign import campaign_report
from ..reports.rollups import start_catch_up
from .base import app_state, find_owner, smstrack_cli


@smstrack_cli.command("demo")
@click.option("--clicks", type=click.IntRange(1, 10_000_000), default=6000, show_default=True, help="How many clicks to make.")
@click.option("--owner", help="Email of the owning user (default: the first admin).")
@click.option("--seed", type=int, help="Make the same data again (default: a random seed, printed).")
@click.option("--no-sms", is_flag=True, help="Skip the second demo, an A/B test sent to imported recipients.")
def demo_command(clicks: int, owner: str | None, seed: int | None, no_sms: bool) -> None:
    """Create a demo campaign with a week of realistic clicks and conversions,
    and a second one: an A/B test sent to 2,000 imported recipients, with
    delivery receipts, forwards and a verdict."""
    from ..demo.common import default_owner_id
    from ..demo.spring_sale import create_demo_campaign
    from ..schemas import format_money

    app_state()
    owner_id = find_owner(owner) if owner is not None else default_owner_id()
    if seed is None:
        seed = secrets.randbelow(1_000_000)
    with click.progressbar(length=clicks, label="Creating demo clicks") as bar:
        campaign = create_demo_campaign(clicks=clicks, owner_id=owner_id, seed=seed, progress=bar.update)
    start_catch_up([campaign.id])
    report = campaign_report(campaign)
    revenue = ", ".join(f"{format_money(v)} {cur}" for cur, v in sorted(report.revenue.items())) or "none"
    click.echo(f"Campaign {campaign.id} created: {campaign.name} (seed {seed})")
    click.echo(f"  clicks:      {report.clicks} human ({report.unique_clicks} unique), {report.previews} previews, {report.bots} bots")
    click.echo(f"  conversions: {report.conversions}, revenue {revenue}")
    click.echo(f"  dashboard:   {current_app.config[Keys.URL_PREFIX]}/campaigns/{campaign.id}")
    if not no_sms:
        _demo_sms(owner_id, seed)


def _demo_sms(owner_id: str | None, seed: int) -> None:
    """The A/B test demo campaign, and what it shows."""
    from ..demo.ab_test import RECIPIENTS, STEPS_PER_RECIPIENT, create_demo_sms_campaign
    from ..reports.campaign import CampaignData
    from ..reports.tables import variant_test
    from ..schemas import format_money

    with click.progressbar(length=RECIPIENTS * STEPS_PER_RECIPIENT, label="Creating the A/B test demo") as bar:
        campaign = create_demo_sms_campaign(owner_id=owner_id, seed=seed, progress=bar.update)
    start_catch_up([campaign.id])
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
    click.echo(f"  dashboard:   {current_app.config[Keys.URL_PREFIX]}/campaigns/{campaign.id}")
