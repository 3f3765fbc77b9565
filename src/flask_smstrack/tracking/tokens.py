"""Conversion tokens: an HMAC over a conversion's event, order id, revenue
and currency, with an expiry, made by the shop's server for its thank-you
page. The browser posts the token with the conversion; the collector then
stores it ``verified``, as if the server had posted it.

A token is ``<scope>.<expiry>.<signature>``: the scope says whose it is
(empty for the host app's own code, which may attribute to any campaign;
else the API caller's owner id), the expiry is in Unix seconds (base 36).
The signature is itsdangerous's HMAC-SHA256 under ``SMSTRACK_SIGNING_KEY``
(or ``SECRET_KEY``).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import current_app
from itsdangerous import Signer

from ..auth import Principal
from ..config import Keys
from ..schemas import format_money
from ..state import signing_key

_SALT = "flask-smstrack.conversion-token"
#: ``<scope>.<expiry>.<signature>``: URL-safe base64, base 36, URL-safe base64.
_TOKEN = re.compile(r"^([A-Za-z0-9_-]{0,400})\.([0-9a-z]{1,12})\.([A-Za-z0-9_-]{1,100})$")


class TokenError(ValueError):
    """A token that is malformed, does not match its conversion, or expired."""


@dataclass(frozen=True)
class Token:
    token: str
    expires_at: dt.datetime


def _signer() -> Signer:
    key = signing_key("Conversion tokens")
    return Signer(key, salt=_SALT, digest_method=hashlib.sha256, key_derivation="hmac")


def _scope_text(principal: Principal | None) -> str:
    if principal is None:
        return ""
    owner = base64.urlsafe_b64encode(principal.owner_id.encode()).decode().rstrip("=")
    return ("a" if principal.is_admin else "o") + owner


def _scope_of(text: str) -> Principal | None:
    if text == "":
        return None
    if text[0] not in "ao":
        raise TokenError("Not a conversion token.")
    try:
        owner = base64.urlsafe_b64decode(text[1:] + "=" * (-len(text[1:]) % 4)).decode()
    except ValueError:  # not base64, or not UTF-8 inside
        raise TokenError("Not a conversion token.") from None
    return Principal(owner, text[0] == "a")


def _message(scope: str, expires: str, fields: dict[str, Any]) -> bytes:
    revenue: Decimal | None = fields.get("revenue")
    signed = [
        scope, expires, fields.get("event") or "conversion", fields.get("order_id"),
        None if revenue is None else format_money(revenue), fields.get("currency"),
    ]
    return json.dumps(signed, separators=(",", ":")).encode()


def make_token(fields: dict[str, Any], principal: Principal | None = None) -> Token:
    """A token for a validated conversion (see :class:`~.schemas.ConversionSchema`;
    it must have an order id), valid for ``SMSTRACK_CONVERSION_TOKEN_TTL``
    seconds. ``principal`` is the API caller it is made for; ``None`` for
    the host app's own code."""
    if not fields.get("order_id"):
        raise ValueError("A conversion token needs an order id.")
    expires = int(time.time()) + int(current_app.config[Keys.CONVERSION_TOKEN_TTL])
    scope, expiry = _scope_text(principal), _base36(expires)
    signature = _signer().get_signature(_message(scope, expiry, fields)).decode()
    return Token(f"{scope}.{expiry}.{signature}", dt.datetime.fromtimestamp(expires, dt.timezone.utc))


def check_token(token: str, fields: dict[str, Any]) -> Principal | None:
    """Whose the token is (``None``: the host app's), if it was made for
    exactly these conversion fields and has not expired. Raises
    :class:`TokenError` with the reason otherwise."""
    match = _TOKEN.match(token)
    if match is None:
        raise TokenError("Not a conversion token.")
    scope, expiry, signature = match.groups()
    principal = _scope_of(scope)
    if not _signer().verify_signature(_message(scope, expiry, fields), signature.encode()):
        raise TokenError(
            "Does not match this conversion: event, order_id, revenue and currency must be the ones it was made for."
        )
    if int(expiry, 36) < time.time():
        raise TokenError("Expired: make a new token for each thank-you page.")
    return principal


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out

