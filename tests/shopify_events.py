"""Shopify webhooks as Shopify sends them (the shapes of its ``orders/create``
and ``refunds/create`` payloads), signed as documented: the header
``X-Shopify-Hmac-Sha256`` is the base64 of the HMAC-SHA256 of the raw body
under the app's secret."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

SECRET = "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"
PATH = "/smstrack/webhooks/shopify"
ORDER_ID = 820982911946154508


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def headers(topic: str, body: bytes, *, webhook_id: str = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            signature: str | None = "sign") -> dict[str, str]:
    out = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": "spring-shop.myshopify.com",
        "X-Shopify-API-Version": "2025-01",
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Triggered-At": "2026-12-01T09:00:00.000000000Z",
    }
    if signature is not None:
        out["X-Shopify-Hmac-Sha256"] = sign(body) if signature == "sign" else signature
    return out


def order(total: str, currency: str = "USD", *, order_id: int = ORDER_ID, click_id: str | None = None,
          landing_site: str | None = None) -> bytes:
    note_attributes = [{"name": "gift_wrap", "value": "no"}]
    if click_id:
        note_attributes.append({"name": "smsclid", "value": click_id})
    return json.dumps({
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "browser_ip": "81.2.69.160",
        "buyer_accepts_marketing": False,
        "cancelled_at": None,
        "cart_token": "Z2NwLXVzLWVhc3QxOjAxSjhRM0c",
        "checkout_token": "bd5a8aa1ecd019dd3520ff791ee3a24c",
        "confirmation_number": "XPAV284CT",
        "contact_email": "jon@example.com",
        "created_at": "2026-12-01T09:00:00-05:00",
        "currency": currency,
        "current_total_price": total,
        "financial_status": "paid",
        "landing_site": landing_site,
        "name": "#1001",
        "note": None,
        "note_attributes": note_attributes,
        "order_number": 1001,
        "presentment_currency": currency,
        "referring_site": None,
        "source_name": "web",
        "subtotal_price": total,
        "test": False,
        "total_discounts": "0.00",
        "total_price": total,
        "total_price_set": {"shop_money": {"amount": total, "currency_code": currency},
                            "presentment_money": {"amount": total, "currency_code": currency}},
        "total_tax": "0.00",
        "line_items": [{
            "id": 866550311766439020, "name": "Linen shirt - M", "price": total, "quantity": 1,
            "product_id": 632910392, "sku": "LINEN-M", "variant_id": 808950810, "taxable": True,
        }],
    }).encode()


def refund(refund_id: int, *, amount: str | None, currency: str = "USD", lines: list[tuple[float, float]] = (),
           order_id: int = ORDER_ID) -> bytes:
    """A refund: a transaction of ``amount`` (none when ``None``) and refunded
    lines as (subtotal, total_tax), numbers as Shopify sends them."""
    body: dict[str, Any] = {
        "id": refund_id,
        "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}",
        "order_id": order_id,
        "created_at": "2026-12-02T10:00:00-05:00",
        "note": "Wrong size",
        "processed_at": "2026-12-02T10:00:00-05:00",
        "restock": True,
        "user_id": 548380009,
        "order_adjustments": [],
        "refund_line_items": [
            {"id": 487817672276298627 + i, "line_item_id": 866550311766439020, "quantity": 1,
             "restock_type": "return", "subtotal": subtotal, "total_tax": tax,
             "subtotal_set": {"shop_money": {"amount": f"{subtotal:.2f}", "currency_code": currency},
                              "presentment_money": {"amount": f"{subtotal:.2f}", "currency_code": currency}}}
            for i, (subtotal, tax) in enumerate(lines)
        ],
        "transactions": [],
    }
    if amount is not None:
        body["transactions"] = [
            {"id": 245135271310205337, "order_id": order_id, "kind": "refund", "gateway": "shopify_payments",
             "status": "success", "message": None, "amount": amount, "currency": currency, "test": False,
             "parent_id": 389404469, "source_name": "web"},
            {"id": 245135271310205338, "order_id": order_id, "kind": "refund", "gateway": "shopify_payments",
             "status": "failure", "message": "Declined", "amount": amount, "currency": currency, "test": False,
             "parent_id": 389404469, "source_name": "web"},
        ]
    return json.dumps(body).encode()
