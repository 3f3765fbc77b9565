"""ClickSend's webhooks: delivery receipts (``POST
/smstrack/webhooks/clicksend/receipts``) and replies to the sending number
(``POST /smstrack/webhooks/clicksend/inbound``), read for STOP and START.

ClickSend signs nothing: it calls the URL set in its dashboard (a delivery
receipt rule, an inbound SMS rule), as a form post or as JSON. The URL
carries a secret, ``SMSTRACK_CLICKSEND_WEBHOOK_SECRET``, as ``?secret=...``
or as the password of basic auth (``https://clicksend:SECRET@go.example.com/...``);
it is compared in constant time. Without a secret configured, every request
is refused; without the right one, a request gets 401 and changes nothing.
"""
from __future__ import annotations

import hmac
from typing import Any

from flask import current_app, jsonify, request
from werkzeug.wrappers import Response

from ..config import Keys
from ..errors import Forbidden, InvalidInput, Unauthorized
from ..schemas import text_problem
from ..sms.optouts import read_reply, record_reply
from ..sms.providers.clicksend import receipt_status
from ..sms.receipts import record_status
from ..sms.recipients import normalize_phone
from .webhooks import bp

#: Where ClickSend posts, under ``SMSTRACK_URL_PREFIX``.
RECEIPTS_PATH = "/webhooks/clicksend/receipts"
INBOUND_PATH = "/webhooks/clicksend/inbound"


def _check_secret() -> None:
    """:class:`.Unauthorized` unless the request carries the webhook secret."""
    secret = current_app.config[Keys.CLICKSEND_WEBHOOK_SECRET]
    if not secret:
        raise Forbidden({"secret": [(
            f"Cannot be checked: set {Keys.CLICKSEND_WEBHOOK_SECRET} and put it in the URL given to ClickSend;"
            " webhooks without it are never accepted."
        )]})
    expected = str(secret).encode("utf-8")
    given = [request.args.get("secret")]
    if request.authorization is not None and request.authorization.type == "basic":
        given.append(request.authorization.password)
    if not any(g is not None and hmac.compare_digest(g.encode("utf-8"), expected) for g in given):
        raise Unauthorized({"secret": [
            "Missing or wrong: the URL given to ClickSend carries it as ?secret=... or as the password of basic auth."
        ]}, headers={"WWW-Authenticate": 'Basic realm="smstrack webhooks"'})


def _fields() -> dict[str, Any]:
    """The posted fields: a form, or a JSON object."""
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise InvalidInput({"_body": ["Must be a JSON object or a form."]})
        return {k: v for k, v in body.items() if isinstance(v, (str, int))}
    return request.form.to_dict()


def _text(fields: dict[str, Any], name: str, limit: int = 64) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    value = str(value).strip()
    if len(value) > limit or (problem := text_problem(value)):
        raise InvalidInput({name: [f"Longer than {limit} characters." if len(value) > limit else problem]})
    return value


def _ignored(reason: str) -> Response:
    # A 2xx, so that ClickSend does not retry an event that will never match.
    return jsonify(ignored=reason)


@bp.post(RECEIPTS_PATH)
def clicksend_receipts() -> Response:
    _check_secret()
    fields = _fields()
    message_id = _text(fields, "message_id")
    if not message_id:
        raise InvalidInput({"message_id": ["Missing."]})
    status = receipt_status(_text(fields, "status_code"), _text(fields, "status"))
    if status is None:
        return _ignored("a status that changes nothing (temporary failure, or unknown)")
    changed = record_status(message_id, status, error_code=_text(fields, "error_code"))
    if changed is None:
        return _ignored("no message with this message_id")
    return Response(status=204)


@bp.post(INBOUND_PATH)
def clicksend_inbound() -> Response:
    _check_secret()
    fields = _fields()
    reply = read_reply(_text(fields, "body", 1600))
    if reply is None:
        return _ignored("not a STOP or START reply")
    message_id = _text(fields, "message_id")
    if not message_id:
        raise InvalidInput({"message_id": ["Missing."]})
    try:
        phone = normalize_phone(_text(fields, "from", 32) or "", current_app.config[Keys.DEFAULT_REGION])
    except ValueError as err:
        raise InvalidInput({"from": [f"{str(err)[:80]}: not a number that can be texted."]}) from None
    record_reply(phone, reply, message_sid=message_id)
    return Response(status=204)
