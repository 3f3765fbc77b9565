"""The redirect's own way in, with ``SMSTRACK_FAST_REDIRECT``: a click on a
live link (``GET`` or ``HEAD /s/<code>``) is recorded and answered by a thin
WSGI layer in front of Flask's dispatch, in the app's context but without a
request context, URL matching, request hooks or a response object. That is
about 40% less work per click (``bench/run.py``).

Everything else goes through Flask as before: other addresses and methods,
and any code that is not a live link (unknown, ended, or unreadable while
the database is down), which the view in :mod:`.redirect` answers with its
404, 410, fallback or 503 pages. The link looked up here is handed to the
view, so an unknown code costs one lookup, not two.

The layer sits inside a ``ProxyFix`` already wrapped around the app, so it
sees the visitor's address and scheme as the view would. The host app's
``before_request`` and ``after_request`` hooks do not run for the clicks it
answers; that is why it is on only in the standalone app unless asked for.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Request

from ..schemas import CODE_RE
from ..state import get_state
from ..tracking.clicks import find_link
from ..tracking.hotdb import DatabaseUnavailable
from ..tracking.shared_links import shared_links
from .redirect import LINK_KEY, click_headers, live

logger = logging.getLogger("flask_smstrack")

_METHODS = ("GET", "HEAD")


class FastRedirect:
    """WSGI middleware: live links' clicks here, the rest to ``wsgi_app``."""

    def __init__(self, app: Flask, wsgi_app: Callable, prefix: str) -> None:
        self.flask_app = app
        self.wsgi_app = wsgi_app
        self.prefix = prefix.rstrip("/") + "/"

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(self.prefix) and environ.get("REQUEST_METHOD") in _METHODS:
            code = path[len(self.prefix):]
            if CODE_RE.match(code):
                headers = self._click(environ, code)
                if headers is not None:
                    start_response("302 FOUND", headers)
                    return []
        return self.wsgi_app(environ, start_response)

    def _click(self, environ: dict[str, Any], code: str) -> list[tuple[str, str]] | None:
        """The 302's headers for a live link's click (recorded), else ``None``
        with what was found left for the view."""
        app = self.flask_app
        with app.app_context():
            try:
                state = get_state()
                # What the app's request hooks and a request context start.
                if state.periodic.enabled:
                    state.periodic.ensure_started()
                shared = shared_links(state)
                if shared is not None and not shared.started:
                    shared.start()  # the subscriber to link edits
                link = find_link(code, state)
            except DatabaseUnavailable:
                return None  # the view serves the fallback or its 503 page
            except Exception:
                # Nothing recorded yet: Flask answers, with its own error
                # handling and logging if it fails the same way.
                logger.exception("The fast redirect could not look up %r; handing it to Flask", code)
                return None
            if not live(link):
                environ[LINK_KEY] = link
                return None
            return click_headers(link, Request(environ), state, app.config)


def install(app: Flask, prefix: str) -> None:
    """Put :class:`FastRedirect` in front of ``app``'s dispatch: inside a
    ``ProxyFix`` that already wraps it, else outermost."""
    wrapped = app.wsgi_app
    if isinstance(wrapped, ProxyFix):
        wrapped.app = FastRedirect(app, wrapped.app, prefix)
    else:
        app.wsgi_app = FastRedirect(app, wrapped, prefix)  # type: ignore[method-assign]
