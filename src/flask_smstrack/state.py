"""Per-app state kept in ``app.extensions["smstrack"]``."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cachetools import TTLCache
from flask import current_app

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from .classify import CountryLookup


class LinkCache:
    """A small thread-safe TTL cache of links by code.

    Each process keeps its own copy for ``SMSTRACK_LINK_CACHE_TTL`` seconds,
    so an edited link reaches every node within that time.
    """

    def __init__(self, maxsize: int, ttl: float) -> None:
        self._cache: TTLCache = TTLCache(maxsize=maxsize, ttl=ttl, timer=time.monotonic)
        self._lock = threading.Lock()

    def get(self, code: str) -> Any:
        with self._lock:
            return self._cache.get(code)

    def put(self, code: str, value: Any) -> None:
        with self._lock:
            self._cache[code] = value

    def discard(self, code: str) -> None:
        with self._lock:
            self._cache.pop(code, None)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


@dataclass
class State:
    db: SQLAlchemy
    links: LinkCache
    country: CountryLookup
    spool_dir: str
    #: The :class:`~flask_smstrack.SmsTrack` instance that set the app up.
    ext: Any = None
    #: The built-in users log in at ``/smstrack/login`` (the host app has
    #: no Flask-Login of its own).
    builtin_login: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def get_state() -> State:
    """The state of the current app; a clear error when it was never set up."""
    try:
        return current_app.extensions["smstrack"]
    except KeyError:
        raise RuntimeError(
            "flask-smstrack is not set up on this app: call SmsTrack(app, db=db) or"
            " smstrack.init_app(app) in your app factory."
        ) from None
