"""The dashboard blueprint, split by page: account (login, password),
keys (API keys), listing (the campaign list), campaign (a campaign's page,
tables, install, link checks), forms (create and edit), messages (the
Messages card), send (the Send page and the jobs' progress), notfound
(unknown addresses under the prefix); charts draw, base holds what the pages share."""
from . import account, campaign, forms, keys, listing, messages, notfound, send  # noqa: F401  (registers the views)
from .base import bp

__all__ = ["bp"]
