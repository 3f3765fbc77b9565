"""Security headers on smstrack's own answers: the dashboard, the API, the
collector's JSON answers and the dashboard's static files.

They are registered per app on smstrack's blueprints only (see
:func:`register`), never as an app-wide hook: a host app's own routes keep
their own headers. The tracked redirect and the snippet (``t.js``), which
other sites load, keep their own minimal headers. A host that wants other
values sets them in its own ``after_request``, which runs after these.
"""
from __future__ import annotations

from flask import Flask, current_app, request
from werkzeug.wrappers import Response

from ..config import Keys

#: Nothing inline: every script and style of the dashboard is a file of
#: its own, so ``'unsafe-inline'`` is never needed.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
])

#: The blueprints whose answers carry the headers: the dashboard's assets,
#: the dashboard, the API and the collector (whose snippet is left out).
BLUEPRINTS = ("smstrack", "smstrack_dashboard", "smstrack_api", "smstrack_collect")
_SNIPPET_ENDPOINT = "smstrack_collect.snippet"


def security_headers(response: Response) -> Response:
    """Add the security headers to one of smstrack's answers."""
    if request.endpoint == _SNIPPET_ENDPOINT:
        return response
    headers = response.headers
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    max_age = int(current_app.config[Keys.HSTS_MAX_AGE] or 0)
    if max_age > 0 and request.is_secure:
        headers["Strict-Transport-Security"] = f"max-age={max_age}"
    return response


def register(app: Flask) -> None:
    """Add :func:`security_headers` to smstrack's blueprints on ``app``
    (and nowhere else)."""
    for name in BLUEPRINTS:
        app.after_request_funcs.setdefault(name, []).append(security_headers)
