"""The dashboard blueprint, split by page: account (login, password),
keys (API keys), listing (the campaign list), campaign (a campaign's page,
tables, install, link checks), forms (create and edit), messages (the
Messages card), send (the Send page and the jobs' progress); charts draw, base holds what the pages share."""
from . import account, campaign, destinations, forms, keys, listing, messages, send  # noqa: F401  (registers the views)
from .base import bp

__all__ = ["bp"]
