"""Stripe's events: a paid Checkout Session or PaymentIntent is a sale, a
refunded Charge a refund.

Every event of one payment names it by its PaymentIntent id (a Checkout
Session without one, such as a subscription's, by its own id), so a shop
subscribed to both ``checkout.session.completed`` and
``payment_intent.succeeded`` gets one sale. The click id is the Checkout
Session's ``client_reference_id`` or the ``smsclid`` (``SMSTRACK_CLICK_PARAM``)
of its or the PaymentIntent's ``metadata``.

Stripe gives amounts in the currency's minor unit, which is not always the
ISO 4217 one: :data:`ZERO_DECIMAL` and :data:`THREE_DECIMAL` are the lists of
https://docs.stripe.com/currencies, and ISK, zero-decimal in ISO 4217, stays
a two-decimal currency in Stripe's API (its "special cases").
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import current_app

from ..config import Keys
from ..errors import Forbidden
from .payloads import integer, obj, parse_json, text
from .sales import Outcome, ignored, record_sale, refund_sale
from .signing import signing_secret

SOURCE = "stripe"
SIGNATURE_HEADER = "Stripe-Signature"
#: Currencies whose Stripe amounts are whole units.
ZERO_DECIMAL = frozenset({
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
})
#: Currencies whose Stripe amounts are thousandths.
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
#: Events that are a sale once paid.
SALE_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded", "payment_intent.succeeded")

_OBJ = "data.object."


def check_installed() -> None:
    """``RuntimeError`` when a webhook secret is set but the ``stripe``
    library is missing."""
    try:
        import stripe  # noqa: F401
    except ImportError:
        raise RuntimeError(
            f"{Keys.STRIPE_WEBHOOK_SECRET} is set, but the stripe library that checks the signatures is not"
            " installed: pip install 'flask-smstrack[stripe]'."
        ) from None


def from_minor_units(amount: int, currency: str) -> Decimal:
    """``amount`` of ``currency`` in Stripe's minor unit as a ``Decimal``:
    ``1999 usd`` is 19.99, ``500 jpy`` is 500, ``1500 kwd`` is 1.500."""
    code = currency.upper()
    places = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    return Decimal(amount).scaleb(-places)


def verified_event(payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event in ``payload``, once the ``Stripe-Signature`` header is
    checked by the stripe library against ``SMSTRACK_STRIPE_WEBHOOK_SECRET``
    (and its timestamp is at most 5 minutes away); :class:`.Forbidden`
    otherwise."""
    secret = signing_secret(
        Keys.STRIPE_WEBHOOK_SECRET, SIGNATURE_HEADER, signature,
        unset=(f"Cannot be checked: set {Keys.STRIPE_WEBHOOK_SECRET} to the endpoint's signing secret (whsec_...);"
               " unsigned events are never accepted."),
        missing="Missing: only events signed by Stripe are accepted here.",
    )
    import stripe  # checked by init_app when the secret is set

    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, stripe.Webhook.DEFAULT_TOLERANCE)
    except stripe.SignatureVerificationError as err:
        raise Forbidden({SIGNATURE_HEADER: [(
            f"{err.user_message or 'Does not match'}. Check {Keys.STRIPE_WEBHOOK_SECRET}: each endpoint has"
            " its own signing secret."
        )]}) from None
    return parse_json(payload)


def handle_event(event: dict[str, Any]) -> Outcome:
    """Record what the verified ``event`` reports, if it is a sale or a refund."""
    kind = text(event, "type", "", required=True)
    data = obj(event, "data", "")
    payment = obj(data, "object", "data.")
    if kind in SALE_EVENTS:
        return _sale(kind, payment)
    if kind == "charge.refunded":
        return _refund(payment)
    return ignored(f"event type {kind!r} is neither a sale nor a refund")


def _id(payment: dict[str, Any], name: str) -> str | None:
    """An id field, which an expanded object carries as ``{"id": ...}``."""
    value = payment.get(name)
    if isinstance(value, dict):
        return text(value, "id", f"{_OBJ}{name}.")
    return text(payment, name, _OBJ)


def _sale(kind: str, payment: dict[str, Any]) -> Outcome:
    param = current_app.config[Keys.CLICK_PARAM]
    metadata = obj(payment, "metadata", _OBJ)
    click_ids = [text(metadata, param, f"{_OBJ}metadata.")]
    if kind.startswith("checkout.session."):
        if payment.get("mode") == "setup":
            return ignored("a setup session: no payment")
        status = text(payment, "payment_status", _OBJ)
        if status not in ("paid", "no_payment_required"):
            return ignored(f"payment_status {status!r}: not paid yet")
        order_id = _id(payment, "payment_intent") or text(payment, "id", _OBJ, required=True)
        amount = integer(payment, "amount_total", _OBJ)
        click_ids.insert(0, text(payment, "client_reference_id", _OBJ))
    else:
        order_id = text(payment, "id", _OBJ, required=True)
        amount = integer(payment, "amount_received", _OBJ)
        if amount is None:
            amount = integer(payment, "amount", _OBJ)
    currency = text(payment, "currency", _OBJ, required=amount is not None)
    revenue = from_minor_units(amount, currency) if amount is not None else None
    return record_sale(source=SOURCE, order_id=order_id, revenue=revenue, currency=currency, click_ids=click_ids)


def _refund(charge: dict[str, Any]) -> Outcome:
    charge_id = text(charge, "id", _OBJ, required=True)
    order_id = _id(charge, "payment_intent") or charge_id
    currency = text(charge, "currency", _OBJ, required=True)
    total = integer(charge, "amount_refunded", _OBJ)
    if total is None:
        return ignored("no amount_refunded")
    # The newest refund's id when the event lists them (API versions before
    # 2022-11-15); else the charge and its running total, which is as unique.
    refunds = obj(charge, "refunds", _OBJ).get("data") or []
    newest = refunds[0] if isinstance(refunds, list) and refunds and isinstance(refunds[0], dict) else {}
    external_id = text(newest, "id", f"{_OBJ}refunds.data.0.") or f"{charge_id}:{total}"
    return refund_sale(
        source=SOURCE, order_id=order_id, currency=currency, external_id=external_id[:128],
        refunded_total=from_minor_units(total, currency), reason="Refunded in Stripe",
    )
