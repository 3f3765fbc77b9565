"""The hot path's circuit breaker: after a database failure, the redirect
stops opening connections for a short, growing while.

While the breaker is open, clicks go straight to the spool and links come
from the in-process cache (stale entries included), so a visitor waits
for nothing and a database that is down or hung is not hammered with a
connection per click. The first request after the wait is let through as
the probe (one at a time): its success closes the breaker, its failure
doubles the wait, from :attr:`Breaker.FIRST` up to :attr:`Breaker.LONGEST`.

One breaker per app and process, shared by the click writer and the link
lookup; its state is shown by ``/smstrack/healthz``. Checking a closed
breaker is one attribute read.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

logger = logging.getLogger("flask_smstrack")


class Breaker:
    """Closed (use the database), open (do not, until :attr:`retry_at`), or
    probing (one request is trying the database)."""

    #: Seconds of the first wait after a failure, doubled after each failed
    #: probe up to :attr:`LONGEST`.
    FIRST = 0.25
    LONGEST = 10.0

    def __init__(self, first: float = FIRST, longest: float = LONGEST, *, probe_timeout: float = 5.0,
                 clock=time.monotonic) -> None:
        self.first, self.longest = float(first), float(longest)
        #: A probe that has not reported after this many seconds (its
        #: thread died, say) no longer keeps others from probing.
        self.probe_timeout = float(probe_timeout)
        self.clock = clock
        #: ``0.0`` while closed: the hot path checks only this.
        self.retry_at = 0.0
        self.wait = 0.0
        self.failures = 0
        self.opened = 0
        self._probe_since: float | None = None
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return not self.retry_at

    def allow(self) -> bool:
        """Whether this request may use the database now. While open, the
        first caller after the wait becomes the probe and gets ``True``;
        it must report with :meth:`success` or :meth:`failure`."""
        if not self.retry_at:
            return True
        now = self.clock()
        if now < self.retry_at:
            return False
        with self._lock:
            if not self.retry_at:
                return True
            since = self._probe_since
            if since is not None and now - since < self.probe_timeout:
                return False
            self._probe_since = now
            return True

    def success(self) -> None:
        """The database answered: close the breaker."""
        if not self.retry_at and not self.failures:
            return
        with self._lock:
            if self.retry_at:
                logger.warning("The database answers again: clicks are written and links read from it.")
            self.retry_at = 0.0
            self.wait = 0.0
            self.failures = 0
            self._probe_since = None

    def failure(self, err: BaseException | None = None) -> None:
        """The database failed (refused, timed out, dropped): open the
        breaker, for twice as long as last time when it was open already."""
        with self._lock:
            self.failures += 1
            now = self.clock()
            if self.retry_at and now < self.retry_at:
                # Another request that started before the breaker opened:
                # the wait already set stands.
                return
            self.wait = self.first if not self.retry_at else min(self.longest, max(self.first, self.wait * 2))
            if not self.retry_at:
                self.opened += 1
                logger.warning(
                    "The database failed on the click path (%s): clicks are spooled and links served from"
                    " the cache; trying again in %.2f s.", type(err).__name__ if err else "error", self.wait)
            self.retry_at = now + self.wait
            self._probe_since = None

    def snapshot(self) -> dict[str, Any]:
        """The breaker's state for the health check."""
        retry_at = self.retry_at
        if not retry_at:
            return {"status": "closed", "failures": 0, "opened": self.opened}
        probing = self._probe_since is not None
        return {
            "status": "probing" if probing else "open",
            "failures": self.failures,
            "opened": self.opened,
            "wait_s": round(self.wait, 3),
            "retry_in_s": round(max(0.0, retry_at - self.clock()), 3),
        }

    def retry_after(self) -> int:
        """Whole seconds a client should wait before trying again (``Retry-After``)."""
        if not self.retry_at:
            return 1
        return max(1, int(self.retry_at - self.clock() + 0.999))
