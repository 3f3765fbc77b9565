"""Twilio's webhooks: delivery receipts (``POST /smstrack/webhooks/twilio/status``),
Link Shortening click events (``POST /smstrack/webhooks/twilio/clicks``) and
replies to the sending number (``POST /smstrack/webhooks/twilio/inbound``),
read for STOP and START.

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
from twilio.request_validator import RequestValidator
from werkzeug.wrappers import Response

from ..config import Keys
from ..errors import JSON_ERROR_CODES, Forbidden, InvalidInput, json_error
from ..schemas import MAX_JSON_DEPTH, json_too_deep, text_problem
from ..sms.optouts import read_reply, record_reply
from ..sms.receipts import record_status
from ..sms.recipients import normalize_phone
from ..sms.twilio import CLICK_CALLBACK_PATH, INBOUND_PATH, STATUS_CALLBACK_PATH, twilio_auth_token
from ..sms.twilio_clicks import record_twilio_click
from .http import check_request_values, read_limited_body

bp = Blueprint("smstrack_webhooks", __name__)
for _code in JSON_ERROR_CODES:
    bp.register_error_handler(_code, json_error)
bp.before_request(check_request_values)

SIGNATURE_HEADER = "X-Twilio-Signature"
SHARED_KEY_HEADER = "X-Twilio-Webhooks-Signature-Settings"
#: Largest click event accepted, in bytes.
MAX_CLICK_BYTES = 16 * 1024


def _refuse(message: str) -> Forbidden:
    return Forbidden({SIGNATURE_HEADER: [message]})


def _signed_urls() -> list[str]:
    """The URLs Twilio may have signed: this request's, and the public one."""
    urls = [request.url]
    base = current_app.config[Keys.BASE_URL]
    if base:
        query = request.query_string.decode("ascii", "replace")
        public = base.rstrip("/") + request.path + (f"?{query}" if query else "")
        if public != request.url:
            urls.append(public)
    return urls


def _check_signature(params: Any) -> None:
    """:class:`.Forbidden` unless the request carries Twilio's signature over
    ``params``: the form, or the raw body of a JSON request."""
    token = twilio_auth_token()
    if not token:
        raise _refuse(
            f"Cannot be checked: set {Keys.TWILIO_AUTH_TOKEN} (or TWILIO_AUTH_TOKEN) to the Auth Token"
            " of the Twilio account; unsigned webhooks are never accepted."
        )
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise _refuse("Missing: only requests signed by Twilio are accepted here.")
    if request.headers.get(SHARED_KEY_HEADER):
        raise _refuse(
            f"Signed with a Webhooks shared key ({SHARED_KEY_HEADER}); this endpoint checks signatures made"
            " with the Auth Token: remove the Webhook Rule that matches this URL."
        )
    if isinstance(params, str) and "bodySHA256" not in request.args:
        # Twilio signs a JSON body through the bodySHA256 query parameter.
        raise _refuse("Does not cover the body: the URL has no bodySHA256 parameter.")
    validator = RequestValidator(token)
    if any(validator.validate(url, params, signature) for url in _signed_urls()):
        return
    raise _refuse(
        f"Does not match this request. Check {Keys.TWILIO_AUTH_TOKEN}; behind a proxy, set"
        f" {Keys.PROXY_HOPS} or {Keys.BASE_URL} so that the URL Twilio called is seen."
    )


def _ignored(reason: str) -> Response:
    # A 2xx, so that Twilio does not retry an event that will never match.
    return jsonify(ignored=reason)


@bp.post(STATUS_CALLBACK_PATH)
def twilio_status() -> Response:
    _check_signature(request.form)
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsSid")
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
    if not sid:
        raise InvalidInput({"MessageSid": ["Missing."]})
    if not status:
        raise InvalidInput({"MessageStatus": ["Missing."]})
    changed = record_status(sid, status, error_code=form.get("ErrorCode"), segments=form.get("NumSegments"))
    if changed is None:
        return _ignored("no message with this MessageSid and status")
    return Response(status=204)


@bp.post(CLICK_CALLBACK_PATH)
def twilio_clicks() -> Response:
    raw = read_limited_body(MAX_CLICK_BYTES)
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput({"_body": ["Not UTF-8 text."]}) from None
    _check_signature(body)
    if json_too_deep(body):
        raise InvalidInput({"_body": [f"Nested deeper than {MAX_JSON_DEPTH} levels."]})
    try:
        event = json.loads(body)
    except ValueError as err:
        raise InvalidInput({"_body": [f"Not valid JSON: {err}."]}) from None
    if not isinstance(event, dict):
        raise InvalidInput({"_body": ["Must be a JSON object."]})
    for name in ("sms_sid", "message_sid", "link", "user_agent", "event_type", "click_time"):
        if event.get(name) is not None and not isinstance(event[name], str):
            raise InvalidInput({name: ["Must be a string."]})
        if event.get(name) and (problem := text_problem(event[name])):
            raise InvalidInput({name: [problem]})
    sid = event.get("sms_sid") or event.get("message_sid")
    if not sid:
        raise InvalidInput({"sms_sid": ["Missing: the SID of the message whose link was clicked."]})
    event_type = (event.get("event_type") or "click").lower()
    if event_type not in ("click", "preview"):
        return _ignored(f"event_type {event_type!r} is not a click")
    raw_time = event.get("click_time")
    if not raw_time:
        # Without it a replayed event cannot be told from a new click.
        raise InvalidInput({"click_time": ["Missing: the time of the click, e.g. 2026-11-27T10:05:00Z."]})
    try:
        clicked_at = dt.datetime.fromisoformat(raw_time.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput({"click_time": ["Not an ISO 8601 time."]}) from None
    if clicked_at.tzinfo is None:
        raise InvalidInput({"click_time": ["Needs a timezone, e.g. 2026-11-27T10:05:00Z."]})
    if clicked_at.timestamp() < 0:
        raise InvalidInput({"click_time": ["Before 1970: not the time of a click."]})
    click_id = record_twilio_click(
        sid, clicked_at, link=event.get("link"), user_agent=event.get("user_agent"), preview=event_type == "preview"
    )
    if click_id is None:
        return _ignored("no message of ours with this sms_sid, or a link our own redirect counts")
    return Response(status=204)


#: The answer to an inbound message: no reply from us (Twilio's Advanced
#: Opt-Out, or the carrier, confirms a STOP itself).
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


@bp.post(INBOUND_PATH)
def twilio_inbound() -> Response:
    _check_signature(request.form)
    form = request.form
    answer = Response(EMPTY_TWIML, mimetype="text/xml")
    reply = read_reply(form.get("Body"), form.get("OptOutType"))
    if reply is None:
        return answer  # any other message: not ours to keep
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    if not sid or len(sid) > 64:
        raise InvalidInput({"MessageSid": ["Missing, or longer than 64 characters."]})
    try:
        phone = normalize_phone(form.get("From") or "", current_app.config[Keys.DEFAULT_REGION])
    except ValueError as err:
        raise InvalidInput({"From": [f"{str(err)[:80]}: not a number that can be texted."]}) from None
    record_reply(phone, reply, message_sid=sid)
    return answer


# ClickSend's webhooks share this blueprint (its error handlers, CSRF exemption).
from . import webhooks_clicksend  # noqa: E402,F401
