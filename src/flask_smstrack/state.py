"""Per-app state kept in ``app.extensions["smstrack"]``."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import current_app

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from .tracking.classify import CountryLookup


class LinkCache:
    """A small TTL cache of links by code, one per process.

    Each process keeps a link for ``SMSTRACK_LINK_CACHE_TTL`` seconds, so an
    edited link reaches every node within that time. Plain dict operations
    are atomic, so threads need no lock; when full, the oldest entry goes.
    """

    def __init__(self, maxsize: int, ttl: float) -> None:
        self.maxsize, self.ttl = max(1, int(maxsize)), float(ttl)
        self._data: dict[str, tuple[float, Any]] = {}

    def get(self, code: str) -> Any:
        item = self._data.get(code)
        if item is None:
            return None
        if item[0] < time.monotonic():
            self._data.pop(code, None)
            return None
        return item[1]

    def put(self, code: str, value: Any) -> None:
        data = self._data
        while len(data) >= self.maxsize:
            try:
                data.pop(next(iter(data)), None)
            except (StopIteration, RuntimeError):  # emptied or changed by another thread
                break
        data[code] = (time.monotonic() + self.ttl, value)

    def discard(self, code: str) -> None:
        self._data.pop(code, None)

    def clear(self) -> None:
        self._data.clear()


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
