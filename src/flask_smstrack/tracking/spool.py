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

import atexit
import collections
import datetime as dt
import glob
import json
import logging
import os
import threading
import time
import weakref
from decimal import Decimal
from typing import Any, Callable, Sequence

from flask import Flask, current_app, has_app_context
from sqlalchemy import event, exc, insert, select
from sqlalchemy.orm import Session

from ..config import Keys
from ..models import Click, RollupState
from ..state import get_state
from .spool_segment import (
    CLICK,
    CONVERSION,
    FRAME,
    HEADER_SIZE,
    LANDING,
    REJECTED,
    REPLAYED,
    WAITING,
    Segment,
    segment_paths,
)
from .spool_store import Spool, default_fallback_dir

logger = logging.getLogger("flask_smstrack")

_clicks = Click.__table__
_INSERT_CLICK = insert(_clicks)

#: Marks written before their segment is synced during a replay.
_SYNC_EVERY = 100


class SpoolUnavailable(Exception):
    """The database did not take a replayed record: try again later."""


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
            return _replay(get_spool(target), None)["left"]

    spool = Spool(**spool_settings(app), replay=replay)
    spool_ref = weakref.ref(spool)
    atexit.register(_close_at_exit, spool_ref)
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


def _close_at_exit(ref) -> None:
    spool = ref()
    if spool is None:
        return
    spool.stop()
    for layer in spool.layers:
        with layer.io:
            for segment in list(layer.segments):
                try:
                    if not any(r.state == WAITING for r in segment.records()):
                        segment.remove()
                except OSError:
                    pass


_standalone: dict[str, Spool] = {}


def _spool_for(spool_dir: str) -> Spool:
    if has_app_context() and "smstrack" in current_app.extensions:
        spool = get_spool()
        if spool.primary_dir == spool_dir:
            return spool
    with _made:
        return _standalone.setdefault(spool_dir, Spool(spool_dir))


# Spooling.


def spool_click(spool_dir: str, row: dict[str, Any]) -> str:
    """Keep a click the database did not take; returns where it went
    (``primary``, ``fallback``, ``memory`` or ``lost``). Never raises."""
    try:
        payload = json.dumps(dict(row, created_at=row["created_at"].isoformat()), separators=(",", ":"))
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


#: What a database that is down, unreachable or not ready raises: the
#: record is kept for later (any other error is a bug or bad data).
DATABASE_DOWN = (exc.OperationalError, exc.InterfaceError, exc.ProgrammingError, exc.DisconnectionError,
                 exc.TimeoutError, exc.InternalError)


# Replaying.


_UNAVAILABLE = DATABASE_DOWN


def _apply(kind: int, payload: bytes) -> str:
    """Write one record: ``written``, ``present`` (already stored) or
    ``rejected`` (never storable: logged with the record).
    :class:`SpoolUnavailable` when the database does not take it now."""
    try:
        record = json.loads(payload)
        if kind == CLICK:
            return _apply_click(record)
        if kind == CONVERSION:
            return _apply_conversion(record)
        if kind == LANDING:
            from .conversions import confirm_landing

            try:
                return "written" if confirm_landing(record["click_id"]) else "rejected"
            finally:
                get_state().db.session.remove()
        raise ValueError(f"unknown record kind {kind}")
    except _UNAVAILABLE as err:
        raise SpoolUnavailable(str(err)) from err
    except Exception:
        logger.error("A spooled record cannot be stored and is set aside (kept in the spool file): %s",
                     payload[:2000].decode(errors="replace"), exc_info=True)
        return "rejected"


def _apply_click(row: dict[str, Any]) -> str:
    from ..reports.rollup_edits import lock_campaigns, shift_clicks

    row["created_at"] = dt.datetime.fromisoformat(row["created_at"])
    if not current_app.config[Keys.STORE_IP]:
        row["ip"] = None
    s = RollupState.__table__.c
    engine = get_state().db.engine
    try:
        with Session(bind=engine) as session, session.begin():
            found = session.execute(select(_clicks.c.id).where(_clicks.c.click_id == row["click_id"])).first()
            if found:
                return "present"
            lock_campaigns(session, [row["campaign_id"]])
            new_id = session.execute(_INSERT_CLICK.returning(_clicks.c.id), row).scalar_one()
            cut = session.execute(select(s.rolled_until).where(s.campaign_id == row["campaign_id"])).scalar()
            if cut is not None and row["created_at"] < cut:
                shift_clicks(session, _clicks.c.id == new_id, 1)
            return "written"
    except exc.IntegrityError:
        with engine.connect() as conn:
            if conn.execute(select(_clicks.c.id).where(_clicks.c.click_id == row["click_id"])).first():
                return "present"  # written meanwhile by another replayer
        raise


def _apply_conversion(record: dict[str, Any]) -> str:
    from ..auth import Principal
    from .conversions import record_conversion

    data = dict(record["data"])
    if data.get("revenue") is not None:
        data["revenue"] = Decimal(data["revenue"])
    scope = Principal(*record["scope"]) if record.get("scope") else None
    result = record_conversion(
        data, source=record["source"], trust=record["trust"], scope=scope, owner_id=record.get("owner_id"),
        fallback_click_ids=record.get("fallback_click_ids") or (),
        created_at=dt.datetime.fromisoformat(record["created_at"]),
    )
    return "present" if result.duplicate and not result.upgraded else "written"


_KIND_NAMES = {CLICK: "clicks", CONVERSION: "conversions", LANDING: "landings"}


def _count(totals: collections.Counter, kind: int, result: str) -> None:
    totals[result] += 1
    totals[f"{result} {_KIND_NAMES.get(kind, 'records')}"] += 1


def _replay_segment(segment: Segment, kind: int, totals: collections.Counter, progress) -> int:
    """Replay a segment's waiting records of ``kind``; returns the offset
    after its last whole record. Raises :class:`SpoolUnavailable` (the
    marks made so far are kept)."""
    marks, reached = 0, None
    try:
        for record in segment.records():
            reached = record.offset + FRAME.size + len(record.payload)
            if record.state != WAITING or record.kind != kind:
                continue
            result = _apply(record.kind, record.payload)
            segment.mark(record.offset, REJECTED if result == "rejected" else REPLAYED)
            _count(totals, kind, result)
            marks += 1
            if marks % _SYNC_EVERY == 0:
                segment.sync()
            if progress is not None:
                progress(1)
    finally:
        if marks:
            segment.sync()
    return reached or HEADER_SIZE


def _replay(spool: Spool, progress) -> collections.Counter:
    """Replay everything this process may: its memory buffer, its own
    segments, and the segments of processes that are gone (each under an
    exclusive ``flock``, so no two processes replay one). Clicks first,
    then conversions and landings, so that they find the click they name.
    Returns counts: ``written``, ``present``, ``rejected`` and ``left``
    (records still waiting that this process could replay later)."""
    totals: collections.Counter = collections.Counter()
    if not spool.replay_lock.acquire(timeout=60):
        totals["left"] = 1
        return totals
    foreign: list[Segment] = []
    try:
        own = [(layer, segment, segment.end) for layer in spool.layers for segment in list(layer.segments)]
        paths = spool.own_paths()
        for path in [p for d in spool.directories for p in segment_paths(d) if p not in paths]:
            try:
                segment = Segment.open(path)
            except (FileNotFoundError, ValueError):
                continue
            if segment.try_lock():
                foreign.append(segment)
            else:  # its process is alive (and replays it), or another replays it
                segment.close()
        try:
            _replay_memory(spool, totals, progress)
            _replay_legacy(spool.primary_dir, totals, progress)
            reached = {}
            for kind in (CLICK, CONVERSION, LANDING):
                for _layer, segment, _end in own:
                    reached[segment.path] = _replay_segment(segment, kind, totals, progress)
                for segment in foreign:
                    _replay_segment(segment, kind, totals, progress)
        except SpoolUnavailable:
            spool.drain_memory()  # to disk, if a layer takes them now
            raise
        for segment in foreign:
            segment.remove()
        for layer, segment, end in own:
            _tidy(layer, segment, end, reached[segment.path], totals)
    finally:
        for segment in foreign:
            segment.close()
        spool.replay_lock.release()
        spool.stats["replayed"] += totals["written"]
        spool.stats["rejected"] += totals["rejected"]
    totals["left"] += len(spool.memory)
    return totals


def _replay_memory(spool: Spool, totals, progress) -> None:
    def apply(kind: int, payload: bytes) -> None:
        _count(totals, kind, _apply(kind, payload))
        if progress is not None:
            progress(1)

    spool.drain_memory(apply)


def _tidy(layer, segment: Segment, end: int, reached: int, totals) -> None:
    """After a replay of one of this process's segments: start it over, or
    remove it when it is full and not the one being written."""
    with layer.io:
        if segment.end != end or reached != end or segment not in layer.segments:
            totals["left"] += 1  # more was written meanwhile: the next round
            return
        if segment is layer.segments[-1]:
            if end > HEADER_SIZE:
                segment.reset()  # every record replayed: the space is used again
        else:
            layer.segments.remove(segment)
            segment.remove()


def _replay_legacy(spool_dir: str, totals, progress) -> None:
    """JSON-lines files of earlier versions (``clicks-<pid>.jsonl``)."""
    for path in legacy_files(spool_dir):
        claimed = f"{path}.{int(time.time() * 1000)}.replaying"
        os.rename(path, claimed)
        with open(claimed, encoding="utf-8") as f:
            rows = [line for line in f if line.strip()]
        for i, line in enumerate(rows):
            try:
                _count(totals, CLICK, _apply(CLICK, line.encode()))
            except SpoolUnavailable:
                with open(path, "a", encoding="utf-8") as f:
                    f.writelines(rows[i:])
                os.remove(claimed)
                raise
            if progress is not None:
                progress(1)
        os.remove(claimed)


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
    return _replay(get_spool(), progress)


# Counting.


def legacy_files(spool_dir: str) -> list[str]:
    return sorted(glob.glob(os.path.join(glob.escape(spool_dir), "clicks-*.jsonl")))


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
