"""Clicks per client address, for the tracked redirect's flood marking.

The redirect never refuses a visitor: a click beyond
``SMSTRACK_RATELIMIT_REDIRECT`` from one address is still redirected, but
recorded as a ``bot`` (reason ``flood``), so it stays out of CTR.

Counting sits on the redirect's hot path, so it costs no round trip for the
usual click. Each process counts in fixed windows of the rate's period, in
memory. With a shared storage (Redis) a process adds its count for an
address to the shared one only once it has seen a batch of clicks from that
address (a twentieth of the rate): a phone that clicks once never reaches
Redis, a flooding address does once per batch until the shared count is
beyond the rate (about twenty times a window), and what each process has
not yet shared is at most a batch per address.
"""
from __future__ import annotations

import ipaddress
import logging
import threading
import time
from typing import Any

logger = logging.getLogger("flask_smstrack")

#: Addresses a process keeps per window; past that it starts a new count.
MAX_ADDRESSES = 200_000
#: Seconds a process counts on its own after the shared storage failed.
STORAGE_RETRY = 10.0


def address_key(address: str | None) -> str:
    """The client an address stands for: an IPv4 address, or the /64
    network of an IPv6 one (a single device or home gets a whole /64)."""
    if not address:
        return "-"
    if ":" not in address:
        return address
    try:
        addr = ipaddress.IPv6Address(address)
    except ValueError:
        return address[:64]
    if addr.ipv4_mapped:
        return str(addr.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(addr) >> 64 << 64, 64)))


class FloodCounter:
    """Counts clicks per client address and says which are beyond the rate.

    :param amount: clicks allowed per address and window.
    :param period: the window, in seconds.
    :param storage: a :mod:`limits` storage shared by every process (Redis),
        or ``None`` to count in this process only.
    :param prefix: prefix of the shared counters' names.
    """

    def __init__(self, amount: int, period: int, storage: Any = None, prefix: str = "smstrack") -> None:
        self.amount, self.period = int(amount), max(1, int(period))
        self.storage = storage
        self.prefix = prefix
        #: Clicks from one address a process counts before sharing them.
        self.batch = max(1, self.amount // 20)
        self._window = -1
        #: Address: [clicks not yet shared, shared count when last seen].
        self._counts: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._storage_down_until = 0.0

    def hit(self, address: str | None) -> bool:
        """Count one click from ``address``; ``True`` when it is beyond the
        rate. Never raises: when the shared storage fails the process
        counts on its own for a while."""
        now = time.time()
        window = int(now // self.period)
        key = address_key(address)
        with self._lock:
            if window != self._window or len(self._counts) >= MAX_ADDRESSES:
                self._counts, self._window = {}, window
            entry = self._counts.get(key)
            if entry is None:
                entry = self._counts[key] = [0, 0]
            entry[0] += 1
            pending = 0
            # Sharing stops once the shared count alone is beyond the rate:
            # every process learns so at its own next share.
            if (
                self.storage is not None
                and entry[0] >= self.batch
                and entry[1] <= self.amount
                and now >= self._storage_down_until
            ):
                pending, entry[0] = entry[0], 0
        if pending:
            self._share(entry, key, window, pending, now)
        return entry[0] + entry[1] > self.amount

    def _share(self, entry: list[int], key: str, window: int, pending: int, now: float) -> None:
        try:
            shared = self.storage.incr(f"{self.prefix}/flood/{key}/{window}", self.period, pending)
        except Exception:
            logger.warning("Could not count clicks in the rate limit storage; counting in this process for now",
                           exc_info=True)
            self._storage_down_until = now + STORAGE_RETRY
            with self._lock:
                entry[0] += pending
            return
        with self._lock:
            entry[1] = max(entry[1], int(shared))
