"""The landing-page snippet: the bytes that ``GET /smstrack/t.js`` serves.

``static/smstrack/t.js`` is written to be read. It is served minified by
rjsmin (comments and whitespace go, the short ``/*! ... */`` header stays):
once per process, or on every request in debug mode so that edits show.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import rjsmin
from flask import current_app

from .assets import SNIPPET_PATH


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
