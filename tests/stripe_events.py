"""Stripe events as Stripe sends them (the shapes of its API reference:
Event, Checkout Session, PaymentIntent, Charge with its refunds), signed
with the documented ``Stripe-Signature`` scheme: ``t=<unix time>,v1=<hex
HMAC-SHA256 of "<t>.<body>" under the endpoint's secret>``."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

SECRET = "whsec_test_7f3a9c0d5e1b2a4c6d8e0f1a3b5c7d9e"
PATH = "/smstrack/webhooks/stripe"


def sign(body: bytes, secret: str = SECRET, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def event(kind: str, obj: dict[str, Any], event_id: str = "evt_1QZ8aB2eZvKYlo2Cx9hT3kLm") -> bytes:
    return json.dumps({
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": 1764583200,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }).encode()


def checkout_session(amount: int, currency: str = "usd", *, pi: str | None = "pi_3QZ8aB2eZvKYlo2C1a2b3c4d",
                     client_reference_id: str | None = None, metadata: dict | None = None,
                     payment_status: str = "paid") -> dict[str, Any]:
    return {
        "id": "cs_test_a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ",
        "object": "checkout.session",
        "amount_subtotal": amount,
        "amount_total": amount,
        "cancel_url": "https://shop.example.com/cart",
        "client_reference_id": client_reference_id,
        "currency": currency,
        "customer": None,
        "customer_details": {"email": "jenny.rosen@example.com", "name": "Jenny Rosen", "phone": None},
        "livemode": False,
        "metadata": metadata or {},
        "mode": "payment",
        "payment_intent": pi,
        "payment_method_types": ["card"],
        "payment_status": payment_status,
        "status": "complete",
        "success_url": "https://shop.example.com/thanks?session_id={CHECKOUT_SESSION_ID}",
        "url": None,
    }


def payment_intent(amount: int, currency: str = "usd", *, pi: str = "pi_3QZ8aB2eZvKYlo2C1a2b3c4d",
                   metadata: dict | None = None) -> dict[str, Any]:
    return {
        "id": pi,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": amount,
        "capture_method": "automatic",
        "client_secret": f"{pi}_secret_Zx9Yw8",
        "currency": currency,
        "customer": None,
        "latest_charge": "ch_3QZ8aB2eZvKYlo2C0z9y8x7w",
        "livemode": False,
        "metadata": metadata or {},
        "payment_method": "pm_1QZ8aA2eZvKYlo2CqW3eR4tY",
        "status": "succeeded",
    }


def charge_refunded(amount: int, refunded: int, refunds: list[tuple[str, int]] | None, currency: str = "usd",
                    *, pi: str = "pi_3QZ8aB2eZvKYlo2C1a2b3c4d") -> dict[str, Any]:
    """A charge after its refunds: ``refunds`` newest first as (id, amount),
    or ``None`` for API versions that no longer include them."""
    charge = {
        "id": "ch_3QZ8aB2eZvKYlo2C0z9y8x7w",
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": refunded,
        "captured": True,
        "currency": currency,
        "livemode": False,
        "paid": True,
        "payment_intent": pi,
        "refunded": refunded == amount,
        "status": "succeeded",
    }
    if refunds is not None:
        charge["refunds"] = {
            "object": "list",
            "data": [
                {"id": rid, "object": "refund", "amount": value, "charge": charge["id"], "currency": currency,
                 "payment_intent": pi, "reason": "requested_by_customer", "status": "succeeded"}
                for rid, value in refunds
            ],
            "has_more": False,
            "total_count": len(refunds),
            "url": f"/v1/charges/{charge['id']}/refunds",
        }
    return charge
