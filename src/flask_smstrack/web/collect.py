"""The snippet (``GET /smstrack/t.js``) and its collector
(``POST /smstrack/collect``)."""
from __future__ import annotations

import contextlib
import logging

from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from ..config import Keys
from ..errors import JSON_ERROR_CODES, Forbidden, InvalidInput, UnsupportedMediaType, json_error
from ..schemas import load_beacon, parse_body
from ..state import get_state
from ..tracking.conversions import confirm_landing, record_conversion
from ..tracking.spool import DATABASE_DOWN, spool_conversion, spool_landing
from ..tracking.tokens import TokenError, check_token
from .http import check_request_values, read_limited_body
from .limits import limit_click
from .snippet import served_snippet

logger = logging.getLogger("flask_smstrack")

bp = Blueprint("smstrack_collect", __name__)
for _code in JSON_ERROR_CODES:
    bp.register_error_handler(_code, json_error)
bp.before_request(check_request_values)

_BODY_TYPES = ("", "text/plain", "application/json")


@bp.get("/t.js")
def snippet() -> Response:
    served = served_snippet()
    response = Response(served.body, mimetype="text/javascript")
    response.set_etag(served.etag)
    response.headers["Cache-Control"] = "public, max-age=3600, stale-while-revalidate=86400"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response.make_conditional(request)


_UNSET = object()


def _allowed_origin() -> str | None:
    """The value for Access-Control-Allow-Origin: ``"*"`` when any origin
    may post, the request's origin when it is listed, ``""`` for a request
    without an Origin header (not a cross-site browser request), or ``None``
    when refused. Worked out once per request."""
    cached = g.get("smstrack_cors_origin", _UNSET)
    if cached is not _UNSET:
        return cached
    allowed = current_app.config[Keys.ALLOWED_ORIGINS]
    origin = request.headers.get("Origin")
    if allowed == "*" or allowed == ["*"]:
        value: str | None = "*"
    else:
        if isinstance(allowed, str):
            allowed = [o.strip() for o in allowed.split(",")]
        value = "" if origin is None else (origin if origin in allowed else None)
    g.smstrack_cors_origin = value
    return value


@bp.after_request
def _cors(response: Response) -> Response:
    """CORS headers on the collector's answers, errors included. Any
    origin (``"*"``) is answered ``*``, never with credentials: only a
    listed origin is echoed, with credentials, so that the answer varies
    by origin."""
    if request.endpoint != "smstrack_collect.collect":
        return response
    origin = _allowed_origin()
    if origin == "*":
        response.headers["Access-Control-Allow-Origin"] = "*"
    else:
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
        response.vary.add("Origin")
    return response


def _trust(message: dict) -> dict:
    """Verified, for whom the token was made, when it is valid for this
    conversion; unverified without one."""
    if message.get("token") is None:
        return {"trust": "unverified"}
    try:
        scope = check_token(message["token"], message)
    except TokenError as err:
        raise InvalidInput({"token": [str(err)]}) from None
    return {"trust": "verified", "scope": scope}


@bp.route("/collect", methods=["POST", "OPTIONS"])
def collect() -> Response:
    if _allowed_origin() is None:
        raise Forbidden({"Origin": [f"This origin is not in {Keys.ALLOWED_ORIGINS}."]})
    if request.method == "OPTIONS":
        response = Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "86400"
        return response
    if request.mimetype not in _BODY_TYPES:
        raise UnsupportedMediaType({"Content-Type": ["Send text/plain or application/json."]})
    raw = read_limited_body()
    try:
        message = load_beacon(parse_body(raw))
    except ValidationError as err:
        raise InvalidInput(err.messages) from None
    try:
        limit_click(message.get("click_id"))
    except DATABASE_DOWN:
        # Whether the click exists is unknown: the per-click limit counted it.
        logger.warning("The collector's unknown-click limit needs the database; not applied", exc_info=True)
        _rollback()
    if message["type"] == "landing":
        try:
            body = {"status": "accepted", "confirmed": confirm_landing(message["click_id"])}
        except DATABASE_DOWN:
            logger.exception("Could not confirm the landing of click %s; spooled for replay", message["click_id"])
            _rollback()
            return _queued(spool_landing(message["click_id"]))
    else:
        # The answer says nothing about the order ids already stored.
        fields = dict(source="snippet", **_trust(message),
                      fallback_click_ids=[request.cookies.get(current_app.config[Keys.COOKIE_NAME])])
        try:
            result = record_conversion(message, **fields)
        except DATABASE_DOWN:
            logger.exception("Could not record a conversion (order %s); spooled for replay", message.get("order_id"))
            return _queued(spool_conversion(message, **fields))
        body = {"status": "accepted", "attributed": result.attributed}
    response = jsonify(body)
    response.status_code = 202
    return response


def _rollback() -> None:
    with contextlib.suppress(Exception):
        get_state().db.session.rollback()


def _queued(where: str) -> Response:
    """``202``: kept in the spool, stored once the database is back; ``503``
    when even the spool could not keep it (the sender should try again)."""
    if where == "lost":
        response = jsonify(status="unavailable", message="The database and the spool are unavailable: send it again later.")
        response.status_code = 503
        response.headers["Retry-After"] = "30"
        return response
    response = jsonify(status="queued", queued=True,
                       message="The database is unavailable: this was queued and will be stored when it is back.")
    response.status_code = 202
    return response
