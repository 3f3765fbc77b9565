"""The dashboard blueprint, split by page: account (login, password),
keys (API keys), listing (the campaign list), campaign (a campaign's page,
tables, install, link checks), forms (create and edit), messages (the
Messages card), send (the Send page and the jobs' progress), timing (the
form's best-time panel), channels (the channel comparison, links' QR
codes), destinations (landing-page tests), webhooks (outbound webhooks and GA4), notfound (unknown addresses
under the prefix); charts draw, base holds what the pages share."""
from . import (  # noqa: F401  (registers the views)
    account,
    campaign,
    channels,
    destinations,
    forms,
    keys,
    listing,
    messages,
    notfound,
    send,
    timing,
    webhooks,
)
from .base import bp

__all__ = ["bp"]
