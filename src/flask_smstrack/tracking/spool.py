"""The spool: clicks and conversions that the database could not take, kept
on disk (or, when no disk takes them, in memory) and written later.

Records go to the layers of :mod:`.spool_store` in segments of
:mod:`.spool_segment`. Every process replays its spool by itself, in a
background thread, once the database answers again (with jitter, so that
nodes do not all come back at once); ``flask smstrack replay-spool`` and
the job ``flask_smstrack.tracking.spool:replay_spool`` do the same on demand.
Each record is written once: a click whose id is stored is skipped, a
conversion goes through :func:`~.conversions.record_conversion`, which
deduplicates order ids. A click older than its campaign's rollup cut is
added to the rollups in the same transaction, under the campaign's lock.
"""
from __future__ import annotations

import collections
import json
import logging
import os
import threading
import weakref
from decimal import Decimal
from typing import Any, Callable, Sequence

from flask import Flask, current_app, has_app_context
from sqlalchemy import event

from ..config import Keys
from .spool_replay import DATABASE_DOWN, SpoolUnavailable, legacy_files, replay_all
from .spool_segment import CLICK, CONVERSION, LANDING, WAITING, Segment, segment_paths
from .spool_store import Spool, default_fallback_dir

__all__ = ["DATABASE_DOWN", "SpoolUnavailable", "get_spool", "open_spool", "replay_counts", "replay_spool",
           "spool_click", "spool_conversion", "spool_files", "spool_landing", "spooled_count", "waiting_records"]

logger = logging.getLogger("flask_smstrack")

# Setting up.


def spool_settings(app: Flask) -> dict[str, Any]:
    c = app.config
    primary = c.get(Keys.SPOOL_DIR) or os.path.join(app.instance_path, "smstrack-spool")
    fallback = c.get(Keys.SPOOL_FALLBACK_DIR)
    size = c.get(Keys.SPOOL_SIZE_BYTES, 64 * 1024 * 1024)
    if isinstance(size, bool) or not isinstance(size, int) or size < 64 * 1024:
        raise RuntimeError(f"{Keys.SPOOL_SIZE_BYTES} is {size!r}: it must be a whole number of bytes, at least"
                           " 65536, for example 67108864 (64 MiB).")
    return {
        "primary": primary,
        "fallback": default_fallback_dir(primary) if fallback is None else fallback,
        "size": size,
        "memory_records": int(c.get(Keys.SPOOL_MEMORY_RECORDS, 10_000)),
        "replay_seconds": float(c.get(Keys.SPOOL_REPLAY_SECONDS, 5.0) or 0),
    }


_made = threading.Lock()


def get_spool(app: Flask | None = None) -> Spool:
    """The app's spool in this process (made on first use)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    spool = app.extensions.get("smstrack_spool")
    if spool is None:
        with _made:
            spool = app.extensions.get("smstrack_spool")
            if spool is None:
                spool = app.extensions["smstrack_spool"] = _make(app)
    return spool


def _make(app: Flask) -> Spool:
    ref = weakref.ref(app)

    def replay() -> int:
        target = ref()
        if target is None:
            return 0
        with target.app_context():
            return replay_all(get_spool(target), None)["left"]

    spool = Spool(**spool_settings(app), replay=replay)
    spool_ref = weakref.ref(spool)
    if "sqlalchemy" in app.extensions:
        with app.app_context():
            # The app is torn down (its engine disposed): stop replaying.
            event.listen(app.extensions["sqlalchemy"].engine, "engine_disposed", lambda *_: _stop(spool_ref))
    return spool


def _stop(ref) -> None:
    spool = ref()
    if spool is not None:
        spool.stop()


def open_spool(app: Flask) -> Spool:
    """Set up the app's spool at start: this process's segment is
    preallocated now, and what earlier processes left is replayed soon."""
    spool = get_spool(app)
    spool.start()
    return spool


_standalone: dict[str, Spool] = {}


def _spool_for(spool_dir: str) -> Spool:
    if has_app_context() and "smstrack" in current_app.extensions:
        spool = get_spool()
        if spool.primary_dir == spool_dir:
            return spool
    with _made:
        spool = _standalone.get(spool_dir)
        if spool is None:
            spool = _standalone[spool_dir] = Spool(spool_dir)
        return spool


# Spooling.


def spool_click(spool_dir: str, row: dict[str, Any], previous: str | None = None) -> str:
    """Keep a click the database did not take; returns where it went
    (``primary``, ``fallback``, ``memory`` or ``lost``). Never raises.

    ``previous`` is the click id of the visitor's cookie when the click could
    not be joined to its visitor: the replay joins it (and places a click on
    a recipient's own link) as the redirect would have."""
    try:
        record = dict(row, created_at=row["created_at"].isoformat())
        if previous is not None:
            record["previous_click_id"] = previous
        payload = json.dumps(record, separators=(",", ":"))
        return _spool_for(spool_dir).put(CLICK, payload.encode())
    except Exception:
        logger.critical("Could not spool click %s either; it is LOST", row.get("click_id"), exc_info=True)
        return "lost"


#: The conversion fields a replay needs (the beacon's others are not kept).
_CONVERSION_FIELDS = ("event", "order_id", "click_id", "revenue", "currency")


def spool_conversion(
    data: dict[str, Any],
    *,
    source: str,
    trust: str,
    scope: Any = None,
    owner_id: str | None = None,
    fallback_click_ids: Sequence[str | None] = (),
) -> str:
    """Keep a validated conversion the database did not take, to be stored
    by :func:`~.conversions.record_conversion` later (with the time it was
    received); returns where it went, like :func:`spool_click`."""
    from ..models import utcnow

    record = {
        "data": {k: (str(v) if isinstance(v, Decimal) else v) for k, v in data.items() if k in _CONVERSION_FIELDS},
        "source": source,
        "trust": trust,
        "scope": [scope.owner_id, scope.is_admin] if scope is not None else None,
        "owner_id": owner_id,
        "fallback_click_ids": [c for c in fallback_click_ids if c],
        "created_at": utcnow().isoformat(),
    }
    try:
        return get_spool().put(CONVERSION, json.dumps(record, separators=(",", ":")).encode())
    except Exception:
        logger.critical("Could not spool conversion %s either; it is LOST", data.get("order_id"), exc_info=True)
        return "lost"


def spool_landing(click_id: str) -> str:
    """Keep a landing confirmation (the snippet ran) for later."""
    try:
        return get_spool().put(LANDING, json.dumps({"click_id": click_id}).encode())
    except Exception:
        logger.critical("Could not spool the landing of click %s either; it is LOST", click_id, exc_info=True)
        return "lost"


# Replaying.


def replay_spool(progress: Callable[[int], Any] | None = None) -> tuple[int, int]:
    """Write the spooled clicks and conversions to the database, now.

    Returns ``(written, already_present)``. A job too: enqueue it as
    ``"flask_smstrack.tracking.spool:replay_spool"``. Raises
    :class:`SpoolUnavailable` when the database still does not answer.
    """
    totals = replay_counts(progress)
    return totals["written"], totals["present"]


def replay_counts(progress: Callable[[int], Any] | None = None) -> collections.Counter:
    """:func:`replay_spool` with every count: ``written``, ``present``,
    ``rejected``, each also by kind (``"written clicks"``...), and ``left``."""
    return replay_all(get_spool(), progress)


# Counting.


def spool_files(spool_dir: str | None = None) -> list[str]:
    """The spool's files: segments of every layer and older JSON-lines
    files (files being replayed are renamed out of this pattern)."""
    if spool_dir is None or (has_app_context() and get_spool().primary_dir == spool_dir):
        spool = get_spool()
        dirs, spool_dir = spool.directories, spool.primary_dir
    else:
        dirs = [spool_dir]
    return [p for d in dirs for p in segment_paths(d)] + legacy_files(spool_dir)


_counted: dict[str, tuple[tuple[int, int, int], int]] = {}


def waiting_in(path: str) -> int:
    """Records waiting in one spool file (remembered until it changes)."""
    st = os.stat(path)
    key = (st.st_ino, st.st_mtime_ns, st.st_size)
    known = _counted.get(path)
    if known is not None and known[0] == key:
        return known[1]
    if path.endswith(".jsonl"):
        with open(path, "rb") as f:
            count = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    else:
        segment = Segment.open(path)
        try:
            count = sum(1 for r in segment.records() if r.state == WAITING)
        finally:
            segment.close()
    _counted[path] = (key, count)
    return count


def waiting_records(directory: str) -> int:
    """Records waiting in the spool files of one directory (for scripts
    and tests: no app needed)."""
    total = 0
    for path in segment_paths(directory) + legacy_files(directory):
        try:
            total += waiting_in(path)
        except (FileNotFoundError, ValueError):
            continue
    return total


def spooled_count() -> int:
    """How many records wait in the spool (every process's files, and this
    process's memory)."""
    total = len(get_spool().memory)
    for path in spool_files():
        try:
            total += waiting_in(path)
        except (FileNotFoundError, ValueError):
            continue
    return total
