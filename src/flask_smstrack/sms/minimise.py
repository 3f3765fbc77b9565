"""Storage minimisation: keeping only the recipient attributes a campaign's
messages use (``import-recipients --keep-columns``)."""
from __future__ import annotations

from ..models import Campaign
from .messages import link_number, placeholders, templates_of


class NoTemplate(ValueError):
    """The campaign has no message yet, so no column is known to be used."""


def used_columns(campaign: Campaign) -> set[str]:
    """The attribute columns the placeholders of the campaign's message and
    variants name (links, ``phone`` and ``external_id`` aside)."""
    templates = templates_of(campaign)
    if not templates:
        raise NoTemplate(
            "the campaign has no message yet: set its message template (or add its variants) first, "
            "so that only the columns it uses are kept"
        )
    return {
        name
        for template in templates
        for name in placeholders(template.text)
        if link_number(name) is None and name not in ("phone", "external_id")
    }
