"""Shops' webhooks: Stripe's events (``POST /smstrack/webhooks/stripe``) and
Shopify's orders and refunds (``POST /smstrack/webhooks/shopify``), each
checked for its provider's signature, recorded as verified sales (see
:mod:`..integrations`).

An event that is not a sale or a refund, or that names nothing stored,
answers 200 with ``{"ignored": reason}`` so that the provider does not
retry it; one without a valid signature answers 403 and changes nothing.
"""
from __future__ import annotations

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from ..errors import JSON_ERROR_CODES, json_error
from ..integrations import shopify, stripe
from .http import check_request_values, read_limited_body

bp = Blueprint("smstrack_webhooks_shop", __name__)
for _code in JSON_ERROR_CODES:
    bp.register_error_handler(_code, json_error)
bp.before_request(check_request_values)

#: Largest event accepted, in bytes: an order with a few hundred lines.
MAX_EVENT_BYTES = 512 * 1024


@bp.post("/webhooks/stripe")
def stripe_events() -> Response:
    event = stripe.verified_event(read_limited_body(MAX_EVENT_BYTES), request.headers.get(stripe.SIGNATURE_HEADER))
    return jsonify(stripe.handle_event(event).as_json())


@bp.post("/webhooks/shopify")
def shopify_events() -> Response:
    body = shopify.verified_body(read_limited_body(MAX_EVENT_BYTES), request.headers.get(shopify.SIGNATURE_HEADER))
    return jsonify(shopify.handle(request.headers.get(shopify.TOPIC_HEADER), body).as_json())
