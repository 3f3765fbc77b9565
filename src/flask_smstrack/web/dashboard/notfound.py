"""Unknown addresses under the dashboard's prefix: the dashboard's own
"page not found", in its layout with its header, instead of a bare 404.

The API's unknown paths keep their JSON answers (its own catch-all is more
specific, so it wins), and the short links keep their page (another prefix).
"""
from __future__ import annotations

from flask import current_app, render_template, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ..api import _AnyPath
from .base import bp

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

bp.record_once(lambda setup: setup.app.url_map.converters.setdefault("smstrack_anypath", _AnyPath))


@bp.route("/<smstrack_anypath:_rest>", methods=list(_METHODS))
def not_found(_rest: str) -> tuple[str, int]:
    """The dashboard's 404 page; 405 for a known path with another method."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in _METHODS:
        try:
            endpoint, _ = adapter.match(request.path, method=method)
        except HTTPException:
            continue
        if endpoint != request.endpoint:
            allowed.append(method)
    if allowed:
        raise MethodNotAllowed(allowed)
    return render_template("smstrack/404.html", path=request.path), 404
