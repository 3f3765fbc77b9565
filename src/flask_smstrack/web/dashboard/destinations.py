"""Landing-page tests on the campaign page: each tested link's table (and
its CSV), drawn from :func:`flask_smstrack.reports.destinations.destination_test`."""
from __future__ import annotations

from typing import Any

from flask_login import login_required
from werkzeug.wrappers import Response

from ...errors import NotFound
from ...models import Campaign
from ...reports.destinations import destination_test
from ...reports.export import csv_download, table_csv
from .base import bp, campaign_or_404

#: Notes that call no winner (the same words as the A/B test's).
_OPEN = ("Too early", "No winner", "Nothing to compare", "Conversion rate cannot")


def destination_cards(campaign: Campaign) -> list[dict[str, Any]]:
    """One card per campaign link with destinations: its table and verdicts."""
    cards = []
    for link in campaign.links:
        if link.destinations:
            table = destination_test(link)
            cards.append({
                "link": link,
                "table": table,
                "verdicts": [{"text": note, "called": not note.startswith(_OPEN)} for note in table.notes],
            })
    return cards


@bp.get("/campaigns/<int:campaign_id>/links/<int:link_id>/destinations.csv")
@login_required
def destinations_download(campaign_id: int, link_id: int) -> Response:
    campaign = campaign_or_404(campaign_id)
    link = next((item for item in campaign.links if item.id == link_id), None)
    if link is None:
        raise NotFound(f"Campaign {campaign_id} has no link {link_id}.")
    return csv_download(table_csv(destination_test(link)), f"link-{link.id}-destinations")
