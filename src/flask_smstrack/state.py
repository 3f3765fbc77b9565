"""Per-app state kept in ``app.extensions["smstrack"]``."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import current_app

from .config import Keys

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from .tracking.classify import CountryLookup
    from .tracking.flood import FloodCounter
    from .tracking.writer import ClickWriter


def signing_key(purpose: str) -> str:
    """``SMSTRACK_SIGNING_KEY``, else the app's ``SECRET_KEY``; ``RuntimeError``
    saying what to set when neither is, ``purpose`` naming what needs it."""
    config = current_app.config
    key = config[Keys.SIGNING_KEY] or config.get("SECRET_KEY")
    if not key:
        raise RuntimeError(f"{purpose} need a key: set {Keys.SIGNING_KEY} (or the app's SECRET_KEY).")
    return key


class LinkCache:
    """A small TTL cache of links by code, one per process.

    Each process keeps a link for ``SMSTRACK_LINK_CACHE_TTL`` seconds, so an
    edited link reaches every node within that time (the process that edits
    it forgets it at once, see :func:`~flask_smstrack.manage.update_link`).
    An expired entry is not thrown away: :meth:`get` no longer returns it,
    but :meth:`stale` does, so the redirect can still serve a link while the
    database cannot be read (stale-if-error). At most ``maxsize`` entries,
    fresh or expired, are kept; when full, the one refreshed longest ago
    goes. Plain dict operations are atomic, so threads need no lock.
    """

    def __init__(self, maxsize: int, ttl: float) -> None:
        self.maxsize, self.ttl = max(1, int(maxsize)), float(ttl)
        self._data: dict[str, tuple[float, Any]] = {}

    def get(self, code: str) -> Any:
        """The entry for ``code`` while it is fresh, else ``None``."""
        item = self._data.get(code)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def stale(self, code: str) -> Any:
        """The entry for ``code`` however old, else ``None``."""
        item = self._data.get(code)
        return None if item is None else item[1]

    def put(self, code: str, value: Any) -> None:
        data = self._data
        # Taken out first, so that a refreshed entry is the newest.
        data.pop(code, None)
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

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True)
class CookieAttributes:
    """The attribution cookie's name and its attributes, without and with
    ``Secure``: written once per app, they only depend on the config."""

    name: str
    plain: str
    secure: str


@dataclass(eq=False)
class State:
    """What the extension keeps per app, in ``app.extensions["smstrack"]``.

    Everything is built by :meth:`~flask_smstrack.SmsTrack.init_app`, before
    the app serves a request, except what depends on config a host may still
    change after ``init_app``: that is built once, on first use, under
    :attr:`lock`, so concurrent first requests never build two.
    """

    db: SQLAlchemy
    links: LinkCache
    country: CountryLookup
    spool_dir: str
    #: Writes clicks on the redirect's hot path: one per app (and engine).
    click_writer: ClickWriter
    #: The :class:`~flask_smstrack.SmsTrack` instance that set the app up.
    ext: Any = None
    #: The Flask-Login ``LoginManager`` of the built-in users, made by
    #: ``init_app`` when the app had none (see :attr:`builtin_login`).
    builtin_manager: Any = None
    #: The Flask-WTF ``CSRFProtect`` instance the collector, API and
    #: webhooks were exempted from (it may be set up after this extension).
    csrf_exempted: Any = None
    #: Counts the redirect's clicks per address (flood marking); ``None``
    #: when rate limits are off.
    flood: FloodCounter | None = None
    #: The rate limits of the collector, API and login
    #: (:class:`flask_smstrack.web.limits.RateLimits`); ``None`` when off.
    limits: Any = None
    #: Background jobs (:class:`flask_smstrack.jobs.queue.Jobs`): see
    #: :func:`enqueue`.
    jobs: Any = None
    #: The periodic jobs on a thread of this process, for apps without Redis
    #: (:class:`flask_smstrack.jobs.periodic.InProcess`).
    periodic: Any = None
    #: The redirect's way to the database, with short timeouts and a
    #: circuit breaker (:class:`flask_smstrack.tracking.hotdb.HotPath`).
    hot: Any = None
    #: The link cache shared by every process in Redis
    #: (:class:`flask_smstrack.tracking.shared_links.SharedLinks`), made on
    #: first use; ``False`` without ``SMSTRACK_REDIS_URL``.
    shared: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _cookie: CookieAttributes | None = field(default=None, repr=False)

    @property
    def builtin_login(self) -> bool:
        """Whether the built-in users log in at ``/smstrack/login``: decided
        on each request, not when ``init_app`` ran, so that a host app
        setting up its own ``LoginManager`` later (which replaces ours as
        ``app.login_manager``) turns the built-in login off."""
        manager = self.builtin_manager
        return manager is not None and getattr(current_app, "login_manager", None) is manager

    def cookie(self, config: Mapping[str, Any]) -> CookieAttributes:
        """The attribution cookie's attributes, from ``config`` on first use."""
        cookie = self._cookie
        if cookie is None:
            with self.lock:
                if self._cookie is None:
                    self._cookie = _cookie_attributes(config)
                cookie = self._cookie
        return cookie


def _cookie_attributes(config: Mapping[str, Any]) -> CookieAttributes:
    parts = [f"Max-Age={int(config[Keys.COOKIE_DAYS]) * 86400}"]
    if config[Keys.COOKIE_DOMAIN]:
        parts.append(f"Domain={config[Keys.COOKIE_DOMAIN]}")
    parts += ["HttpOnly", "Path=/", "SameSite=Lax"]
    plain = "; ".join(parts)
    return CookieAttributes(config[Keys.COOKIE_NAME], plain, f"{plain}; Secure")


def get_state() -> State:
    """The state of the current app; a clear error when it was never set up."""
    try:
        return current_app.extensions["smstrack"]
    except KeyError:
        raise RuntimeError(
            "flask-smstrack is not set up on this app: call SmsTrack(app, db=db) or"
            " smstrack.init_app(app) in your app factory."
        ) from None


def redis_client(app=None):
    """The app's Redis client for ``SMSTRACK_REDIS_URL`` (one per process,
    made on first use), or ``None`` when it is not set."""
    app = app or current_app._get_current_object()
    url = app.config.get(Keys.REDIS_URL)
    if not url:
        return None
    clients = app.extensions.setdefault("smstrack_redis", {})
    client = clients.get(url)
    if client is None:
        try:
            import redis
        except ImportError:  # pragma: no cover - depends on the install
            raise RuntimeError(
                f"{Keys.REDIS_URL} is set but the redis package is missing: install flask-smstrack[redis]."
            ) from None
        client = clients[url] = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0,
                                                     health_check_interval=30)
    return client


def redis_key(app, *parts: str) -> str:
    """A Redis key or channel name under ``SMSTRACK_REDIS_PREFIX``."""
    return ":".join([app.config.get(Keys.REDIS_PREFIX) or "smstrack", *parts])


def links_changed(stored: Iterable[str] = (), dropped: Iterable[str] | None = ()) -> None:
    """Links changed in the database, committed: every process serves them
    as they are now. ``stored`` (links created or edited) are written to the
    shared cache at once; ``dropped`` (links whose campaign link changed, say)
    are forgotten and read again on their next click; ``None`` drops every
    link this process keeps. Without ``SMSTRACK_REDIS_URL`` only this
    process's cache forgets them (the others' within ``SMSTRACK_LINK_CACHE_TTL``)."""
    resolve_job("flask_smstrack.tracking.shared_links:links_changed")(stored, dropped)


def enqueue(name: str, *args: Any, **kwargs: Any) -> Any:
    """Run the job ``name`` (``"package.module:function"``) in the background
    when the app has a queue, else now; modules below :mod:`flask_smstrack.jobs`
    start jobs through this, by name."""
    jobs = get_state().jobs
    if jobs is None:
        return resolve_job(name)(*args, **kwargs)
    return jobs.enqueue(name, *args, **kwargs)


def resolve_job(name: str):
    """The function a job's name (``"package.module:function"``) names."""
    from importlib import import_module

    module, _, attr = name.partition(":")
    return getattr(import_module(module), attr)
