"""The snippet (``GET /smstrack/t.js``) and its collector
(``POST /smstrack/collect``)."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from ..errors import error_response, http_error_as_json
from ..schemas import load_beacon, parse_body
from ..tracking.conversions import confirm_landing, record_conversion
from .snippet import served_snippet

bp = Blueprint("smstrack_collect", __name__)
bp.register_error_handler(HTTPException, http_error_as_json)

_BODY_TYPES = ("", "text/plain", "application/json")


@bp.get("/t.js")
def snippet() -> Response:
    served = served_snippet()
    response = Response(served.body, mimetype="text/javascript")
    response.set_etag(served.etag)
    response.headers["Cache-Control"] = "public, max-age=3600, stale-while-revalidate=86400"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response.make_conditional(request)


def read_limited_body(limit: int | None = None) -> bytes:
    """The request body; ``ValidationError`` when it is over ``limit`` bytes
    (default ``SMSTRACK_MAX_PAYLOAD_BYTES``), for a 413."""
    if limit is None:
        limit = current_app.config["SMSTRACK_MAX_PAYLOAD_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise ValidationError({"_body": [f"Body is larger than {limit} bytes."]})
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise ValidationError({"_body": [f"Body is larger than {limit} bytes."]})
    return raw


def _allowed_origin() -> str | None:
    """The value for Access-Control-Allow-Origin, or ``None`` when refused."""
    origin = request.headers.get("Origin")
    allowed = current_app.config["SMSTRACK_ALLOWED_ORIGINS"]
    if allowed == "*" or allowed == ["*"]:
        return origin or "*"
    if isinstance(allowed, str):
        allowed = [o.strip() for o in allowed.split(",")]
    if origin is None or origin in allowed:
        return origin or ""
    return None


def _cors(response: Response, origin: str) -> Response:
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        if origin != "*":
            response.headers["Access-Control-Allow-Credentials"] = "true"
    response.vary.add("Origin")
    return response


@bp.route("/collect", methods=["POST", "OPTIONS"])
def collect() -> Response:
    origin = _allowed_origin()
    if origin is None:
        return _cors(
            error_response({"Origin": ["This origin is not in SMSTRACK_ALLOWED_ORIGINS."]}, 403), ""
        )
    if request.method == "OPTIONS":
        response = Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "86400"
        return _cors(response, origin)
    if request.mimetype not in _BODY_TYPES:
        return _cors(
            error_response({"Content-Type": ["Send text/plain or application/json."]}, 415), origin
        )
    try:
        raw = read_limited_body()
    except ValidationError as err:
        return _cors(error_response(err.messages, 413), origin)
    try:
        message = load_beacon(parse_body(raw))
    except ValidationError as err:
        return _cors(error_response(err.messages, 400), origin)
    if message["type"] == "landing":
        body = {"status": "accepted", "confirmed": confirm_landing(message["click_id"])}
    else:
        result = record_conversion(
            message,
            source="snippet",
            trust="unverified",
            fallback_click_id=request.cookies.get(current_app.config["SMSTRACK_COOKIE_NAME"]),
        )
        body = {"status": "accepted", "attributed": result.attributed, "duplicate": result.duplicate}
    response = jsonify(body)
    response.status_code = 202
    return _cors(response, origin)
