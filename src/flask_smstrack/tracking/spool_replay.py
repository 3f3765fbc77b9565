"""Replaying the spool: each record written to the database once.

A click whose id is stored is skipped; a conversion goes through
:func:`~.conversions.record_conversion`, which deduplicates order ids; a
click older than its campaign's rollup cut is added to the rollups in the
same transaction, under the campaign's lock. A process replays its own
segments and those of processes that are gone, each under an exclusive
``flock`` (see :mod:`.spool_segment`).
"""
from __future__ import annotations

import collections
import datetime as dt
import glob
import json
import logging
import os
import time
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import exc, insert, select
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
from .spool_store import Spool

logger = logging.getLogger("flask_smstrack")

_clicks = Click.__table__
_INSERT_CLICK = insert(_clicks)

#: Marks written before their segment is synced during a replay.
_SYNC_EVERY = 100


class SpoolUnavailable(Exception):
    """The database did not take a replayed record: try again later."""


#: What a database that is down, unreachable or not ready raises: the
#: record is kept for later (any other error is a bug or bad data).
DATABASE_DOWN = (exc.OperationalError, exc.InterfaceError, exc.ProgrammingError, exc.DisconnectionError,
                 exc.TimeoutError, exc.InternalError)


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
        logger.error("A spooled record cannot be stored and is set aside; here it is, whole: %s",
                     payload.decode(errors="replace"), exc_info=True)
        return "rejected"


def _apply_click(row: dict[str, Any]) -> str:
    from ..reports.rollup_edits import lock_campaigns, shift_clicks
    from .clicks import join_recipient, join_visitor

    previous = row.pop("previous_click_id", None)
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
            # Joined as the redirect would have: its visitor, and against the
            # recipient's first click.
            if row["kind"] == "human" and previous:
                join_visitor(session, row, previous)
            if row["kind"] == "human" and row.get("recipient_id") is not None:
                join_recipient(session, row)
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


def replay_all(spool: Spool, progress) -> collections.Counter:
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
        _remove_abandoned(spool.directories)
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


def _remove_abandoned(directories: list[str]) -> None:
    """Segments a process died while making (``.spool-*.new``, minutes old)."""
    for directory in directories:
        for path in glob.glob(os.path.join(glob.escape(directory), ".spool-*.new")):
            try:
                if os.stat(path).st_mtime < time.time() - 300:
                    os.unlink(path)
            except OSError:
                pass


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


def legacy_files(spool_dir: str) -> list[str]:
    return sorted(glob.glob(os.path.join(glob.escape(spool_dir), "clicks-*.jsonl")))
