"""Reports of other SMS platforms: ``flask smstrack import-report``."""
from __future__ import annotations

import click

from ..reports.rollups import start_catch_up
from ..sms.report_import import PLATFORMS
from .base import campaign_or_fail, smstrack_cli


@smstrack_cli.command("import-report")
@click.argument("campaign_id", type=int)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--platform", type=click.Choice(sorted(PLATFORMS)), default="generic", show_default=True,
              help="Whose report it is: picks the default column map.")
@click.option("--map", "maps", multiple=True, metavar="COLUMN=FIELD",
              help="Read COLUMN as FIELD (phone, status, delivered_at, clicked, cost, segments); repeatable.")
def import_report_command(campaign_id: int, file: str, platform: str, maps: tuple[str, ...]) -> None:
    """Read another platform's delivery and click report (CSV) into a
    campaign whose messages were exported for it: delivery statuses and
    prices reach the report and the ROI."""
    from ..sms.recipients import ImportError_, read_csv
    from ..sms.report_import import import_report, parse_overrides

    campaign = campaign_or_fail(campaign_id)
    with click.open_file(file, encoding="utf-8-sig") as f:
        text = f.read()
    lines = max(text.count("\n") - 1, 0) + (0 if text.endswith("\n") else 1)
    try:
        overrides = parse_overrides(maps)
        with click.progressbar(length=max(lines, 1), label="Importing the report") as bar:
            result = import_report(campaign.id, read_csv(text), platform, overrides=overrides, progress=bar.update)
    except ImportError_ as err:
        raise click.ClickException(str(err)) from None
    start_catch_up([campaign.id])
    click.echo(
        f"Read {result.matched} rows: {result.updated} statuses updated, {result.clicked} clicked;"
        f" {len(result.errors)} rows left out."
    )
    if result.cost is not None:
        click.echo(f"The campaign's cost is now the sum of the report's prices: {result.cost} {campaign.currency}.")
    for _line, message in result.errors[:50]:
        click.echo(f"  {message}", err=True)
    if len(result.errors) > 50:
        click.echo(f"  ... and {len(result.errors) - 50} more", err=True)
