"""The errors flask-smstrack answers a request with.

Every one is a :class:`SmsTrackError`, a Werkzeug ``HTTPException`` with a
``description`` and the messages of each field at fault, so a host app can
handle them all at once::

    @app.errorhandler(SmsTrackError)
    def smstrack_error(error):
        return {"error": error.description, "fields": error.errors}, error.code

Without a handler of the host's, an error answers
``{"errors": {field: [messages]}}`` (the JSON API, the collector, the
webhooks), or the dashboard's own error page on the dashboard.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import g, has_request_context, render_template
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

#: The field name of messages about the request as a whole.
REQUEST = "_request"


def _flatten(errors: Mapping[str, Any]) -> str:
    def text(messages: Any) -> str:
        if isinstance(messages, Mapping):
            return "; ".join(f"{k}: {text(v)}" for k, v in messages.items())
        if isinstance(messages, (list, tuple)):
            return " ".join(text(m) for m in messages)
        return str(messages)

    return "; ".join(text(messages) if field == REQUEST else f"{field}: {text(messages)}"
                     for field, messages in errors.items())


class SmsTrackError(HTTPException):
    """A request flask-smstrack cannot serve, and why.

    :param errors: the messages of each field at fault (as marshmallow's
        ``ValidationError.messages``), or one message about the request.
    :param headers: extra response headers (``WWW-Authenticate``, ``Allow``).

    Raise one of the subclasses, each with its status code; the base class
    has none, so that ``@app.errorhandler(SmsTrackError)`` catches them all.
    """

    code: int | None = None
    description = "The request is not valid."

    def __init__(
        self,
        errors: Mapping[str, Any] | str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if errors is None:
            errors = {REQUEST: [self.description]}
        elif isinstance(errors, str):
            errors = {REQUEST: [errors]}
        #: Field name: list of messages (``"_request"`` for the request itself).
        self.errors: dict[str, Any] = dict(errors)
        self.extra_headers = dict(headers or {})
        super().__init__(_flatten(self.errors))

    def get_response(self, environ=None, scope=None) -> Response:
        """The answer when no error handler of the host's takes the error:
        the dashboard's error page on the dashboard, JSON elsewhere."""
        template = g.get("smstrack_error_template") if has_request_context() else None
        if not template:
            return _json_response(self.errors, self.code or 500, self.extra_headers.items())
        response = Response(render_template(template, error=self), self.code, mimetype="text/html")
        response.headers.update(self.extra_headers)
        return response


class InvalidInput(SmsTrackError):
    """A field is missing or breaks a rule (400)."""

    code = 400
    description = "The request is not valid."


class Unauthorized(SmsTrackError):
    """No valid API key or session (401)."""

    code = 401
    description = "Send 'Authorization: Bearer <api key>'."


class Forbidden(SmsTrackError):
    """Known, but not allowed: an origin, a signature, an account (403)."""

    code = 403
    description = "This request is not allowed."


class NotFound(SmsTrackError):
    """No such campaign, table, variant or endpoint (404)."""

    code = 404
    description = "Not found."


class MethodNotAllowed(SmsTrackError):
    """A known path with another method (405)."""

    code = 405
    description = "This method is not allowed here."


class Conflict(SmsTrackError):
    """The request clashes with what is stored: a code in use, messages already sent (409)."""

    code = 409
    description = "This conflicts with what is stored."


class PayloadTooLarge(SmsTrackError):
    """The body is larger than the configured limit (413)."""

    code = 413
    description = "The body is too large."


class UnsupportedMediaType(SmsTrackError):
    """The body's ``Content-Type`` is not one the endpoint reads (415)."""

    code = 415
    description = "This content type is not accepted."


class TooManyRequests(SmsTrackError):
    """A rate limit is used up; ``Retry-After`` says for how long (429)."""

    code = 429
    description = "Too many requests."


#: The status codes of Werkzeug's own errors that the JSON blueprints answer
#: in JSON (see :func:`json_error`).
JSON_ERROR_CODES = (400, 401, 403, 404, 405, 409, 413, 415, 429)


def json_error(error: HTTPException) -> Response:
    """Werkzeug's own HTTP errors (a malformed form, a body over
    ``MAX_CONTENT_LENGTH``...) as ``{"errors": {"_request": [message]}}``,
    for the blueprints that speak JSON. Registered by status code, so that
    a :class:`SmsTrackError` still reaches the host's handlers. An error
    that carries its own answer (the rate limiter's 429) is answered with it."""
    if error.response is not None:
        return error.response
    headers = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]
    return _json_response({REQUEST: [error.description or error.name]}, error.code or 500, headers)


def _json_response(errors: Mapping[str, Any], status: int, headers) -> Response:
    """``{"errors": errors}`` with ``status`` and the extra ``headers``."""
    response = Response(json.dumps({"errors": errors}, default=str), status, mimetype="application/json")
    for name, value in headers:
        response.headers[name] = value
    return response
