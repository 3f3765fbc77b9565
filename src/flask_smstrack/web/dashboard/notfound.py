"""Unknown addresses under the dashboard's prefix: the dashboard's own
"page not found", in its layout with its header, instead of a bare 404.

The API's unknown paths keep their JSON answers (its own catch-all is more
specific, so it wins), and the short links keep their page (another prefix).
"""
from __future__ import annotations

from flask import render_template, request
from werkzeug.exceptions import MethodNotAllowed

from ..api import _AnyPath
from ..http import CATCH_ALL_METHODS, routed_methods
from .base import bp

bp.record_once(lambda setup: setup.app.url_map.converters.setdefault("smstrack_anypath", _AnyPath))


@bp.route("/<smstrack_anypath:_rest>", methods=list(CATCH_ALL_METHODS))
def not_found(_rest: str) -> tuple[str, int]:
    """The dashboard's 404 page; 405 for a known path with another method."""
    allowed = routed_methods()
    if allowed:
        raise MethodNotAllowed(allowed)
    return render_template("smstrack/404.html", path=request.path), 404
