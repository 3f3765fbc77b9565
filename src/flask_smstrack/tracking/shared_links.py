"""The link cache shared by every process and node, in Redis.

With ``SMSTRACK_REDIS_URL`` set, the redirect looks a code up in this
process's cache, then in Redis (``<prefix>:link:<code>``), then in the
database, and keeps what it found in both caches. Creating or editing a link
writes it to Redis at once (write-through), so another node serves it at
once, also while the database is down; recipients' own links, made in bulk
when messages are prepared, are read through on their first click.

Every edit is published on ``<prefix>:links`` (the codes, separated by
spaces, or ``all``). Each process runs a daemon thread subscribed to that
channel, started on its first lookup and again after a fork, which drops
those codes from its own cache; after a reconnect it drops everything, since
it may have missed messages.

Redis never breaks the redirect: its calls have short timeouts, a failure
falls through to the database, and after one the redirect leaves Redis alone
for a while (longer after each failure in a row, up to :data:`MAX_BACKOFF`).
An edit that could not reach Redis is sent again by the process that made
it once Redis answers (while that process lives), and the first process to
get Redis back after losing it deletes the shared links (one process per
outage, :meth:`SharedLinks._after_outage`): they are read again from the
database, since edits may have been missed meanwhile.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import fields, replace
from typing import Any

from flask import current_app, has_request_context

from ..config import Keys
from ..state import State, get_state, redis_key
from .clicks import CachedLink, find_link
from .destinations import decoded

logger = logging.getLogger("flask_smstrack")

#: Seconds the redirect waits for Redis before it asks the database instead.
TIMEOUT = 0.25
#: Longest pause, in seconds, before the redirect tries a failed Redis again.
MAX_BACKOFF = 30.0
#: Above this many codes an edit is published as ``all``.
MAX_PUBLISHED = 1000

_FIELDS = tuple(f.name for f in fields(CachedLink))
_ALL = "all"

#: Every shared cache of this process, to reset in a forked child.
_INSTANCES: weakref.WeakSet[SharedLinks] = weakref.WeakSet()


def encode(link: CachedLink) -> str:
    """``link`` as a compact JSON array of its fields, in order."""
    return json.dumps([getattr(link, name) for name in _FIELDS], separators=(",", ":"))


def decode(raw: bytes | str) -> CachedLink | None:
    """The link ``raw`` holds; ``None`` for anything else (written by another version)."""
    try:
        link = CachedLink(*json.loads(raw))
        return replace(link, destinations=decoded(link.destinations))
    except (TypeError, ValueError):
        return None


class SharedLinks:
    """One app's shared link cache in this process (see the module's text)."""

    def __init__(self, app: Any, local: Any) -> None:
        import redis

        url = app.config[Keys.REDIS_URL]
        self.local = local
        self.ttl = max(1, int(app.config[Keys.SHARED_LINK_TTL]))
        self.prefix = redis_key(app, "link", "")
        self.channel = redis_key(app, "links")
        self.client = redis.Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
        self._listener_client = redis.Redis.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=1.0, health_check_interval=2,
            client_name=f"{self.channel}-listener",
        )
        self._errors = (redis.RedisError, OSError)
        #: Bumped by every invalidation this process hears of: a lookup
        #: started before one keeps its result out of the process's cache.
        self.generation = 0
        #: Whether the subscriber is subscribed now.
        self.listening = False
        self._seen = threading.local()
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._failures = 0
        self._pending: set[str] = set()
        self._pending_all = False
        self._reset()
        _INSTANCES.add(self)

    def _reset(self) -> None:
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.listening = False

    # -- the redirect's side ---------------------------------------------------

    def get(self, code: str) -> CachedLink | None:
        """The link for ``code`` from Redis (kept in this process's cache
        too), or ``None`` when Redis does not have it or cannot answer."""
        if self._thread is None and has_request_context():
            self.start()  # serving requests (not a command): listen for edits
        self._seen.generation = generation = self.generation
        if self._down_until and time.monotonic() < self._down_until:
            return None
        try:
            raw = self.client.get(self.prefix + code)
        except self._errors as err:
            self._failed(err)
            return None
        if self._failures:
            self._recovered()
        link = decode(raw) if raw is not None else None
        if link is not None and generation == self.generation:
            self.local.put(code, link)
        return link

    def put(self, code: str, link: CachedLink) -> None:
        """Keep ``link``, just read from the database, in both caches. Redis
        keeps what it has (an edit may have written a newer one meanwhile)."""
        if getattr(self._seen, "generation", None) == self.generation:
            self.local.put(code, link)
        if self._down_until and time.monotonic() < self._down_until:
            return
        try:
            self.client.set(self.prefix + code, encode(link), ex=self.ttl, nx=True)
        except self._errors as err:
            self._failed(err)

    def _failed(self, err: Exception) -> None:
        self._failures += 1
        pause = min(MAX_BACKOFF, 2.0 ** (self._failures - 1))
        self._down_until = time.monotonic() + pause
        if self._failures == 1:
            logger.warning("Redis did not answer the link cache (%s); the database serves links, Redis is"
                           " tried again in %g s", err, pause)

    def _recovered(self) -> None:
        self._failures, self._down_until = 0, 0.0

    # -- edits -------------------------------------------------------------------

    def changed(self, stored: Iterable[str], dropped: Iterable[str] | None) -> None:
        """Links changed in the database (committed): write ``stored`` to
        Redis afresh, drop ``dropped`` from it (``None``: this process's whole
        cache), and tell every process to forget them."""
        stored, everything = list(stored), dropped is None
        dropped = [] if dropped is None else list(dropped)
        codes = stored + dropped
        if everything:
            self.local.clear()
        for code in codes:
            self.local.discard(code)
        self.generation += 1
        try:
            if everything:
                self._delete_all()
            for start in range(0, len(codes), 500):
                self.client.delete(*[self.prefix + code for code in codes[start:start + 500]])
            for code in stored:
                link = find_link(code, get_state())
                self.local.discard(code)
                if link is not None:
                    self.client.set(self.prefix + code, encode(link), ex=self.ttl)
            self._publish(codes, everything)
        except self._errors as err:
            self._failed(err)
            logger.warning("Redis did not take a link edit (%s): it is saved, and other processes serve it"
                           " within %s; it is sent again when Redis answers", err, Keys.LINK_CACHE_TTL)
            with self._lock:
                self._pending.update(codes)
                self._pending_all = self._pending_all or everything
            self.start()  # the subscriber sends it again

    def _delete_all(self) -> None:
        """Delete every link this app keeps in Redis (rare: a bulk change)."""
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix) + "*"
        batch = []
        for key in self.client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) == 500:
                self.client.unlink(*batch)
                batch = []
        if batch:
            self.client.unlink(*batch)

    def _publish(self, codes: list[str], everything: bool) -> None:
        if everything or len(codes) > MAX_PUBLISHED:
            self.client.publish(self.channel, _ALL)
        elif codes:
            self.client.publish(self.channel, " ".join(codes))

    def _flush_pending(self) -> None:
        with self._lock:
            codes, everything = sorted(self._pending), self._pending_all
            self._pending, self._pending_all = set(), False
        if not codes and not everything:
            return
        try:
            if everything:
                self._delete_all()
            for start in range(0, len(codes), 500):
                self.client.delete(*[self.prefix + code for code in codes[start:start + 500]])
            self._publish(codes, everything)
            self._recovered()
        except self._errors:
            with self._lock:
                self._pending.update(codes)
                self._pending_all = self._pending_all or everything
            raise

    # -- the subscriber ----------------------------------------------------------

    @property
    def started(self) -> bool:
        """Whether this process's subscriber was started."""
        return self._thread is not None

    def start(self) -> None:
        """Start this process's subscriber, unless it runs already."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, name="smstrack-links", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Stop the subscriber (within half a second) and close the connections."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        self.client.close()
        self._listener_client.close()

    def _forget(self, data: bytes) -> None:
        self.generation += 1
        text = data.decode("utf-8", "replace")
        if text == _ALL:
            self.local.clear()
            return
        for code in text.split():
            self.local.discard(code)

    def _after_outage(self) -> None:
        """Redis answers again after this process lost it: edits made
        meanwhile may not have reached it, so the links it holds are deleted
        (read again from the database), by one process per outage."""
        if self.client.set(self.channel + ":outage", os.getpid(), nx=True, ex=10):
            logger.warning("Redis answers again: the shared link cache starts afresh")
            self._delete_all()

    def _listen(self) -> None:
        stop, pause, lost = self._stop, 0.5, False
        while not stop.is_set():
            pubsub = self._listener_client.pubsub()
            try:
                pubsub.subscribe(self.channel)
                while not stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None and message["type"] == "message":
                        self._forget(message["data"])
                    elif message is not None and message["type"] == "subscribe":
                        # Messages sent while this process was not listening
                        # are lost: what it kept may be out of date.
                        self.generation += 1
                        self.local.clear()
                        if lost:
                            self._after_outage()
                        self.listening, pause, lost = True, 0.5, False
                        self._recovered()
                    if self._pending or self._pending_all:
                        self._flush_pending()
            except Exception as err:  # the subscriber outlives anything a connection throws
                if stop.is_set():
                    break
                if self.listening:
                    logger.warning("The link edits' subscriber lost Redis (%s); reconnecting", err)
                self.listening, lost = False, True
                stop.wait(pause)
                pause = min(2.0, pause * 2)
            finally:
                try:
                    pubsub.close()
                except Exception:  # pragma: no cover - closing a broken socket
                    pass
        self.listening = False


def _after_fork() -> None:
    """In a forked child (a gunicorn worker): no subscriber runs, and what
    the parent kept may be out of date; the next lookup starts one again."""
    for shared in list(_INSTANCES):
        shared._lock = threading.Lock()  # a parent's thread may have held it
        shared._reset()
        shared.generation += 1
        shared.local.clear()


os.register_at_fork(after_in_child=_after_fork)


def shared_links(state: State) -> SharedLinks | None:
    """The app's shared link cache, made on first use; ``None`` without
    ``SMSTRACK_REDIS_URL``."""
    shared = state.shared
    if shared is None:
        with state.lock:
            if state.shared is None:
                app = current_app._get_current_object()
                state.shared = _make(app, state) if app.config.get(Keys.REDIS_URL) else False
            shared = state.shared
    return shared or None


def _make(app: Any, state: State) -> SharedLinks | bool:
    try:
        return SharedLinks(app, state.links)
    except ImportError:  # pragma: no cover - depends on the install
        logger.error("%s is set but the redis package is missing: install flask-smstrack[redis]. Each process"
                     " caches links alone.", Keys.REDIS_URL)
        return False


def links_changed(stored: Iterable[str] = (), dropped: Iterable[str] | None = ()) -> None:
    """Links changed in the database: see :func:`flask_smstrack.state.links_changed`."""
    state = get_state()
    shared = shared_links(state)
    if shared is not None:
        shared.changed(stored, dropped)
        return
    if dropped is None:
        state.links.clear()
        dropped = ()
    for code in [*stored, *dropped]:
        state.links.discard(code)
