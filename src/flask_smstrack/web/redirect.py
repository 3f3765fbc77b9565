"""``GET /s/<code>``: record the click, answer 302."""
from __future__ import annotations

import logging
import time

from flask import Blueprint, current_app, redirect, render_template, request
from flask import Response as FlaskResponse
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Response

from ..config import Keys
from ..schemas import CODE_RE
from ..state import get_state
from ..tracking.clicks import CachedLink, find_link, record_click, redirect_target, to_uri
from ..tracking.hotdb import DatabaseUnavailable

logger = logging.getLogger("flask_smstrack")

bp = Blueprint("smstrack_links", __name__)

#: Where :mod:`.fast_redirect` leaves the link it looked up for the view
#: (``None`` for a code that is no link).
LINK_KEY = "flask_smstrack.link"


class _Redirect(FlaskResponse):
    """The redirect's ``302``: its headers are final as the view gives them
    (the ``Location`` already a URI, a ``Content-Length`` of 0), so they are
    sent as they are, with no body and no ``Content-Type``. (An app with a
    response class of its own turns it into one of those, which sends the
    same headers.)"""

    default_mimetype = None

    def get_wsgi_headers(self, environ) -> Headers:
        return self.headers


@bp.get("/<code>")
def follow(code: str) -> Response:
    state = get_state()
    config = current_app.config
    req = request._get_current_object()
    # What :mod:`.fast_redirect` found for this code, if it looked.
    link = req.environ.pop(LINK_KEY, _UNSEEN)
    if link is _UNSEEN:
        try:
            link = find_link(code, state) if CODE_RE.match(code) else None
        except DatabaseUnavailable:
            # A link this process has never seen, and the database is down.
            return _unavailable(state, config[Keys.FALLBACK_URL], code)
    if link is None:
        return _nowhere(config[Keys.FALLBACK_URL], "smstrack/404.html", 404, code)
    if not live(link):
        # An ended offer: no click, no cookie.
        return _nowhere(link.fallback or config[Keys.FALLBACK_URL], "smstrack/410.html", 410, code)
    return _Redirect(status=302, headers=click_headers(link, req, state, config))


_UNSEEN = object()


def live(link: CachedLink | None) -> bool:
    """Whether ``link`` leads to its destination now (not disabled or expired)."""
    return link is not None and not link.ended(time.time())


def click_headers(link: CachedLink, req, state, config) -> list[tuple[str, str]]:
    """Record a click on the live ``link`` (``req``: a werkzeug request) and
    return the headers of its 302: the destination, and the attribution
    cookie for a human. The click is recorded once, and the visitor is sent
    on even if the headers cannot be made as they should."""
    click_id, agent, destination = record_click(link, req, state)
    try:
        headers = [("Location", redirect_target(link, click_id, destination)), ("Cache-Control", "no-store"),
                   ("Content-Length", "0")]
        # Global Privacy Control (``Sec-GPC: 1``): the click is counted, but no
        # attribution cookie is left on the visitor's browser.
        if agent.kind == "human" and req.environ.get("HTTP_SEC_GPC") != "1":
            cookie = state.cookie(config)
            wanted = config[Keys.COOKIE_SECURE]
            is_secure = req.is_secure if wanted is None else wanted
            headers.append(("Set-Cookie", f"{cookie.name}={click_id}; {cookie.secure if is_secure else cookie.plain}"))
        return headers
    except Exception:  # pragma: no cover - defensive: a known link always redirects
        logger.exception("Could not answer click %s on link %s as usual; sent to its destination", click_id, link.id)
        return [("Location", to_uri(link.destination)), ("Cache-Control", "no-store"), ("Content-Length", "0")]


def _nowhere(fallback: str | None, template: str, status: int, code: str) -> Response:
    """A 302 to ``fallback``, else ``template`` with ``status``."""
    if fallback:
        response = redirect(fallback, 302)
    else:
        response = current_app.make_response((render_template(template, code=code), status))
    response.headers["Cache-Control"] = "no-store"
    return response


def _unavailable(state, fallback: str | None, code: str) -> Response:
    """A 302 to the fallback, else a 503 page asking to try again soon."""
    if fallback:
        return _nowhere(fallback, "smstrack/503.html", 503, code)
    retry = state.hot.breaker.retry_after()
    response = current_app.make_response((render_template("smstrack/503.html", code=code, retry=retry), 503))
    response.headers["Retry-After"] = str(retry)
    response.headers["Cache-Control"] = "no-store"
    return response
