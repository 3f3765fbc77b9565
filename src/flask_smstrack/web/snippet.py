"""The landing-page snippet: the bytes that ``GET /smstrack/t.js`` serves,
and the ``<script>`` tag that loads it with this app's settings.

``static/smstrack/t.js`` is written to be read. It is served minified by
rjsmin (comments and whitespace go, the short ``/*! ... */`` header stays):
once per process, or on every request in debug mode so that edits show.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import rjsmin
from flask import current_app, url_for
from markupsafe import escape

from ..config import Keys
from .assets import SNIPPET_PATH

#: The settings the snippet takes from ``data-*`` attributes, each with the
#: config key that should match it and the snippet's own default (t.js uses
#: the same value when the attribute is missing).
_OPTIONS = (
    ("data-param", Keys.CLICK_PARAM, "smsclid"),
    ("data-cookie", Keys.SNIPPET_COOKIE_NAME, "_smsclid"),
    ("data-cookie-days", Keys.COOKIE_DAYS, "30"),
)


@dataclass(frozen=True)
class Snippet:
    """What ``GET /smstrack/t.js`` answers with."""

    body: bytes
    etag: str


def minify(source: str) -> bytes:
    """The snippet's source without comments and needless whitespace,
    keeping ``/*! ... */`` comments."""
    return rjsmin.jsmin(source, keep_bang_comments=True).encode("utf-8")


def _build() -> Snippet:
    body = minify(SNIPPET_PATH.read_text(encoding="utf-8"))
    return Snippet(body, hashlib.sha256(body).hexdigest()[:16])


@functools.cache
def _built_once() -> Snippet:
    return _build()


def served_snippet() -> Snippet:
    """The minified snippet and its ETag (made from the served bytes)."""
    if current_app.debug:
        return _build()
    return _built_once()


def _attribute_value(key: str, value: str | int | float) -> str:
    if key == Keys.COOKIE_DAYS:
        days = float(value)
        return str(int(days)) if days.is_integer() else str(days)
    return str(value)


def snippet_tag() -> str:
    """The ``<script>`` tag that site owners paste on their landing pages,
    as HTML source text.

    Its ``src`` is this app's ``t.js`` under ``SMSTRACK_BASE_URL`` (or the
    current request's host). ``SMSTRACK_CLICK_PARAM``,
    ``SMSTRACK_SNIPPET_COOKIE_NAME`` and ``SMSTRACK_COOKIE_DAYS`` become
    ``data-param``, ``data-cookie`` and ``data-cookie-days`` when they differ
    from the snippet's defaults, so the tag stays short for most apps. Needs
    a request context (or ``SERVER_NAME``) to build the URL.
    """
    config = current_app.config
    base = config[Keys.BASE_URL]
    if base:
        src = base.rstrip("/") + url_for("smstrack_collect.snippet")
    else:
        src = url_for("smstrack_collect.snippet", _external=True)
    attributes = [f'async src="{escape(src)}"']
    for attribute, key, default in _OPTIONS:
        value = _attribute_value(key, config[key])
        if value != default:
            attributes.append(f'{attribute}="{escape(value)}"')
    return f"<script {' '.join(attributes)}></script>"
