"""Shopify's webhooks: ``orders/create`` (or ``orders/paid``) is a sale,
``refunds/create`` a refund of one.

The order id is Shopify's order id; the click id is the order's note
attribute ``smsclid`` (``SMSTRACK_CLICK_PARAM``), which the shop's theme puts
in the cart, else the ``smsclid`` query parameter of the order's
``landing_site``. A retried webhook (the same ``X-Shopify-Webhook-Id``) is
the same order or refund id again, and changes nothing.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import current_app

from ..config import Keys
from ..errors import Forbidden
from .payloads import items, money, parse_json, text
from .sales import Outcome, ignored, record_sale, refund_sale
from .signing import signing_secret

SOURCE = "shopify"
SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"
TOPIC_HEADER = "X-Shopify-Topic"
SALE_TOPICS = ("orders/create", "orders/paid")


def signature_of(body: bytes, secret: str) -> str:
    """Shopify's signature of ``body``: the base64 of its HMAC-SHA256."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verified_body(body: bytes, signature: str | None) -> dict[str, Any]:
    """The JSON object in ``body``, once ``X-Shopify-Hmac-Sha256`` matches
    it under ``SMSTRACK_SHOPIFY_WEBHOOK_SECRET`` (compared in constant
    time); :class:`.Forbidden` otherwise."""
    secret = signing_secret(
        Keys.SHOPIFY_WEBHOOK_SECRET, SIGNATURE_HEADER, signature,
        unset=(f"Cannot be checked: set {Keys.SHOPIFY_WEBHOOK_SECRET} to the secret that signs the shop's"
               " webhooks; unsigned webhooks are never accepted."),
        missing="Missing: only webhooks signed by Shopify are accepted here.",
    )
    expected = signature_of(body, secret).encode("ascii")
    if not hmac.compare_digest(expected, signature.strip().encode("latin-1", "replace")):
        raise Forbidden({SIGNATURE_HEADER: [(
            f"Does not match the body. Check {Keys.SHOPIFY_WEBHOOK_SECRET}: the app's client secret, or the"
            " key shown under Settings > Notifications > Webhooks."
        )]})
    return parse_json(body)


def handle(topic: str | None, body: dict[str, Any]) -> Outcome:
    """Record what the verified webhook ``topic`` reports."""
    if topic in SALE_TOPICS:
        return _order(body)
    if topic == "refunds/create":
        return _refund(body)
    return ignored(f"topic {topic!r} is neither an order nor a refund")


def click_ids(order: dict[str, Any]) -> list[str | None]:
    """The click ids an order carries: its note attribute, then the query
    parameter of the page the visitor landed on."""
    param = current_app.config[Keys.CLICK_PARAM]
    found = [text(a, "value", "note_attributes.") for a in items(order, "note_attributes", "") if a.get("name") == param]
    landing = text(order, "landing_site", "")
    if landing:
        found += parse_qs(urlsplit(landing).query).get(param, [])[:1]
    return found


def _order(order: dict[str, Any]) -> Outcome:
    order_id = text(order, "id", "", required=True)
    revenue = money(order, "total_price", "")
    currency = text(order, "currency", "", required=revenue is not None)
    return record_sale(source=SOURCE, order_id=order_id, revenue=revenue, currency=currency, click_ids=click_ids(order))


def _refund(refund: dict[str, Any]) -> Outcome:
    refund_id = text(refund, "id", "", required=True)
    order_id = text(refund, "order_id", "", required=True)
    amount, currency = Decimal(0), None
    for i, t in enumerate(items(refund, "transactions", "")):
        if t.get("kind") == "refund" and t.get("status") in ("success", None):
            amount += money(t, "amount", f"transactions.{i}.") or 0
            currency = currency or text(t, "currency", f"transactions.{i}.")
    if not amount:
        # No money moved through Shopify's payments: the refunded lines.
        for i, line in enumerate(items(refund, "refund_line_items", "")):
            where = f"refund_line_items.{i}."
            amount += (money(line, "subtotal", where) or 0) + (money(line, "total_tax", where) or 0)
    if not amount:
        return ignored("the refund moved no money")
    return refund_sale(
        source=SOURCE, order_id=order_id, currency=currency or _order_currency(refund), external_id=refund_id,
        amount=amount, reason="Refunded in Shopify",
    )


def _order_currency(refund: dict[str, Any]) -> str | None:
    """The currency of the refunded lines (the shop's), if they name one."""
    for line in items(refund, "refund_line_items", ""):
        prices = line.get("subtotal_set")
        shop_money = prices.get("shop_money") if isinstance(prices, dict) else None
        if isinstance(shop_money, dict) and isinstance(shop_money.get("currency_code"), str):
            return shop_money["currency_code"]
    return None
