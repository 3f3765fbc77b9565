"""JSON error bodies: ``{"errors": {field: [messages]}}``."""
from __future__ import annotations

from flask import jsonify
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response


def error_response(errors: dict, status: int, headers: dict | None = None) -> Response:
    response = jsonify(errors=errors)
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


def http_error_as_json(error: HTTPException) -> Response:
    """Any HTTP error of the API or collector as a JSON body."""
    return error_response({"_request": [error.description or error.name]}, error.code or 500)
