"""What the shop webhooks check before a signature: that a secret is set
to check it with, and that the request carries one."""
from __future__ import annotations

from flask import current_app

from ..errors import Forbidden


def signing_secret(key: str, header: str, signature: str | None, *, unset: str, missing: str) -> str:
    """The secret in config ``key``; :class:`.Forbidden` naming ``header``
    with ``unset`` when there is none, or with ``missing`` when the request
    has no ``signature``."""
    secret = current_app.config[key]
    if not secret:
        raise Forbidden({header: [unset]})
    if not signature:
        raise Forbidden({header: [missing]})
    return secret
