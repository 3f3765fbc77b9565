"""Twilio's webhooks: delivery receipts (``POST /smstrack/webhooks/twilio/status``)
and Link Shortening click events (``POST /smstrack/webhooks/twilio/clicks``).

Only requests signed by Twilio with the account's Auth Token
(``X-Twilio-Signature``) are answered; without a token configured, every
request is refused. Twilio signs the URL it was given: behind a proxy that
is the public URL, which ``request.url`` is when ``ProxyFix`` is applied
(``SMSTRACK_PROXY_HOPS``), and which ``SMSTRACK_BASE_URL`` also gives.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from marshmallow import ValidationError
from twilio.request_validator import RequestValidator
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from ..errors import error_response, http_error_as_json
from ..sms.receipts import record_status
from ..sms.twilio import CLICK_CALLBACK_PATH, STATUS_CALLBACK_PATH, twilio_auth_token
from ..sms.twilio_clicks import record_twilio_click
from .collect import read_limited_body

bp = Blueprint("smstrack_webhooks", __name__)
bp.register_error_handler(HTTPException, http_error_as_json)

SIGNATURE_HEADER = "X-Twilio-Signature"
SHARED_KEY_HEADER = "X-Twilio-Webhooks-Signature-Settings"
#: Largest click event accepted, in bytes.
MAX_CLICK_BYTES = 16 * 1024


def _refuse(message: str) -> Response:
    return error_response({SIGNATURE_HEADER: [message]}, 403)


def _signed_urls() -> list[str]:
    """The URLs Twilio may have signed: this request's, and the public one."""
    urls = [request.url]
    base = current_app.config["SMSTRACK_BASE_URL"]
    if base:
        query = request.query_string.decode("ascii", "replace")
        public = base.rstrip("/") + request.path + (f"?{query}" if query else "")
        if public != request.url:
            urls.append(public)
    return urls


def _signature_problem(params: Any) -> Response | None:
    """A 403 unless the request carries Twilio's signature over ``params``:
    the form, or the raw body of a JSON request."""
    token = twilio_auth_token()
    if not token:
        return _refuse(
            "Cannot be checked: set SMSTRACK_TWILIO_AUTH_TOKEN (or TWILIO_AUTH_TOKEN) to the Auth Token"
            " of the Twilio account; unsigned webhooks are never accepted."
        )
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        return _refuse("Missing: only requests signed by Twilio are accepted here.")
    if request.headers.get(SHARED_KEY_HEADER):
        return _refuse(
            f"Signed with a Webhooks shared key ({SHARED_KEY_HEADER}); this endpoint checks signatures made"
            " with the Auth Token: remove the Webhook Rule that matches this URL."
        )
    if isinstance(params, str) and "bodySHA256" not in request.args:
        # Twilio signs a JSON body through the bodySHA256 query parameter.
        return _refuse("Does not cover the body: the URL has no bodySHA256 parameter.")
    validator = RequestValidator(token)
    if any(validator.validate(url, params, signature) for url in _signed_urls()):
        return None
    return _refuse(
        "Does not match this request. Check SMSTRACK_TWILIO_AUTH_TOKEN; behind a proxy, set"
        " SMSTRACK_PROXY_HOPS or SMSTRACK_BASE_URL so that the URL Twilio called is seen."
    )


def _ignored(reason: str) -> Response:
    # A 2xx, so that Twilio does not retry an event that will never match.
    return jsonify(ignored=reason)


@bp.post(STATUS_CALLBACK_PATH)
def twilio_status() -> Response:
    problem = _signature_problem(request.form)
    if problem is not None:
        return problem
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsSid")
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
    if not sid:
        return error_response({"MessageSid": ["Missing."]}, 400)
    if not status:
        return error_response({"MessageStatus": ["Missing."]}, 400)
    changed = record_status(sid, status, error_code=form.get("ErrorCode"), segments=form.get("NumSegments"))
    if changed is None:
        return _ignored("no message with this MessageSid and status")
    return Response(status=204)


@bp.post(CLICK_CALLBACK_PATH)
def twilio_clicks() -> Response:
    try:
        raw = read_limited_body(MAX_CLICK_BYTES)
    except ValidationError as err:
        return error_response(err.messages, 413)
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        return error_response({"_body": ["Not UTF-8 text."]}, 400)
    problem = _signature_problem(body)
    if problem is not None:
        return problem
    try:
        event = json.loads(body)
    except ValueError as err:
        return error_response({"_body": [f"Not valid JSON: {err}."]}, 400)
    if not isinstance(event, dict):
        return error_response({"_body": ["Must be a JSON object."]}, 400)
    sid = event.get("sms_sid") or event.get("message_sid")
    if not isinstance(sid, str) or not sid:
        return error_response({"sms_sid": ["Missing: the SID of the message whose link was clicked."]}, 400)
    for name in ("link", "user_agent", "event_type"):
        if event.get(name) is not None and not isinstance(event[name], str):
            return error_response({name: ["Must be a string."]}, 400)
    event_type = (event.get("event_type") or "click").lower()
    if event_type not in ("click", "preview"):
        return _ignored(f"event_type {event_type!r} is not a click")
    raw_time = event.get("click_time")
    clicked_at = None
    if raw_time is not None:
        try:
            clicked_at = dt.datetime.fromisoformat(str(raw_time).replace("Z", "+00:00"))
        except ValueError:
            return error_response({"click_time": ["Not an ISO 8601 time."]}, 400)
        if clicked_at.tzinfo is None:
            return error_response({"click_time": ["Needs a timezone, e.g. 2026-11-27T10:05:00Z."]}, 400)
    click_id = record_twilio_click(
        sid, link=event.get("link"), user_agent=event.get("user_agent"), preview=event_type == "preview",
        event=(clicked_at, "|".join((sid, str(raw_time), event.get("link") or "", event_type, event.get("user_agent") or "")))
        if clicked_at else None,
    )
    if click_id is None:
        return _ignored("no message of ours with this sms_sid, or a link our own redirect counts")
    return Response(status=204)
