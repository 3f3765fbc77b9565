"""The snippet (``GET /smstrack/t.js``) and its collector
(``POST /smstrack/collect``)."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from ..config import Keys
from ..errors import JSON_ERROR_CODES, Forbidden, InvalidInput, UnsupportedMediaType, json_error
from ..schemas import load_beacon, parse_body
from ..tracking.conversions import confirm_landing, record_conversion
from .http import read_limited_body
from .limits import limit_click
from .snippet import served_snippet

bp = Blueprint("smstrack_collect", __name__)
for _code in JSON_ERROR_CODES:
    bp.register_error_handler(_code, json_error)

_BODY_TYPES = ("", "text/plain", "application/json")


@bp.get("/t.js")
def snippet() -> Response:
    served = served_snippet()
    response = Response(served.body, mimetype="text/javascript")
    response.set_etag(served.etag)
    response.headers["Cache-Control"] = "public, max-age=3600, stale-while-revalidate=86400"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response.make_conditional(request)


def _allowed_origin() -> str | None:
    """The value for Access-Control-Allow-Origin, or ``None`` when refused."""
    origin = request.headers.get("Origin")
    allowed = current_app.config[Keys.ALLOWED_ORIGINS]
    if allowed == "*" or allowed == ["*"]:
        return origin or "*"
    if isinstance(allowed, str):
        allowed = [o.strip() for o in allowed.split(",")]
    if origin is None or origin in allowed:
        return origin or ""
    return None


@bp.after_request
def _cors(response: Response) -> Response:
    """CORS headers on the collector's answers, errors included: the
    origin is echoed when allowed."""
    if request.endpoint != "smstrack_collect.collect":
        return response
    origin = _allowed_origin()
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        if origin != "*":
            response.headers["Access-Control-Allow-Credentials"] = "true"
    response.vary.add("Origin")
    return response


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
    limit_click(message.get("click_id"))
    if message["type"] == "landing":
        body = {"status": "accepted", "confirmed": confirm_landing(message["click_id"])}
    else:
        result = record_conversion(
            message,
            source="snippet",
            trust="unverified",
            fallback_click_id=request.cookies.get(current_app.config[Keys.COOKIE_NAME]),
        )
        body = {"status": "accepted", "attributed": result.attributed, "duplicate": result.duplicate}
    response = jsonify(body)
    response.status_code = 202
    return response
