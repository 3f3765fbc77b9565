"""Landing-page tests on the campaign page: each tested link's table (and
its CSV), drawn from :func:`flask_smstrack.reports.destinations.destination_test`."""
from __future__ import annotations

from typing import Any

from flask_login import login_required
from werkzeug.wrappers import Response

from ...errors import NotFound
from ...models import Campaign
from ...models.destinations import MAX_DESTINATIONS
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


# The link form's "Landing-page test" rows.

_NAMES = {"label": "label", "url": "URL", "weight": "weight"}


def posted_destinations(form: Any) -> list[dict[str, Any]]:
    """The form's destination rows (``dest_label_1``, ``dest_url_1``,
    ``dest_weight_1``...), blank ones left out, for the link schema; a
    weight that is not a whole number is passed on as typed, to be refused."""
    out = []
    for n in range(1, MAX_DESTINATIONS + 1):
        label, url, weight = (form.get(f"dest_{k}_{n}", "").strip()[:4096] for k in ("label", "url", "weight"))
        if label or url or weight:
            out.append({"label": label, "url": url, "weight": int(weight) if weight.isdigit() else weight})
    return out


def destination_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows the form shows: ``items`` then blanks (at least 3, at most 10)."""
    rows = [{"label": d["label"], "url": d["url"], "weight": d["weight"]} for d in items]
    blank = max(3 - len(rows), 1 if len(rows) < MAX_DESTINATIONS else 0)
    return rows + [{"label": "", "url": "", "weight": ""} for _ in range(blank)]


def destination_errors(messages: Any) -> list[str]:
    """The schema's messages on ``destinations`` as sentences naming the row."""
    if isinstance(messages, dict):
        return [
            f"Destination {int(index) + 1}, {_NAMES.get(name, name)}: {message}"
            for index, fields in messages.items()
            for name, texts in (fields.items() if isinstance(fields, dict) else [("", fields)])
            for message in texts
        ]
    return list(messages)
