"""Where a record goes when the database cannot take it: the spool's layers.

1. the primary directory (``SMSTRACK_SPOOL_DIR``): this process's segment,
   preallocated at start (``SMSTRACK_SPOOL_SIZE_BYTES``), so that a disk
   that fills up later cannot refuse the write;
2. the fallback directory (``SMSTRACK_SPOOL_FALLBACK_DIR``), on another
   filesystem where there is one: its segment is made when first needed;
3. memory: at most ``SMSTRACK_SPOOL_MEMORY_RECORDS`` records, written to a
   spool layer or the database as soon as one takes them;
4. lost: counted and logged as critical.

Writes to a directory are group committed: the records of every thread that
arrives while a batch is being written and synced make up the next batch,
which one of them writes with one ``pwrite`` and one ``fdatasync``. A record
is acknowledged (:meth:`Spool.put` returns) only once its batch is on disk.
"""
from __future__ import annotations

import collections
import errno
import hashlib
import logging
import os
import random
import tempfile
import threading
import time
import weakref
from typing import Any, Callable

from .spool_segment import HEADER_SIZE, WAITING, Segment, frame, segment_paths

logger = logging.getLogger("flask_smstrack")
#: Jitter from the system's randomness, never the random module's shared
#: state (which a seeded caller may rely on).
_jitter = random.SystemRandom()

#: Seconds a layer that failed is skipped before it is tried again.
RETRY_AFTER = 1.0
#: The longest pause between replay attempts while the database is down
#: (or eight times ``SMSTRACK_SPOOL_REPLAY_SECONDS``, when that is shorter).
MAX_REPLAY_PAUSE = 30.0


def default_fallback_dir(primary: str) -> str:
    """``/dev/shm`` (memory, survives a crashed process but not a reboot) when
    it exists and is not the primary's filesystem, else the temporary
    directory; a folder named after the primary, so apps never share one."""
    tag = hashlib.sha1(os.path.abspath(primary).encode()).hexdigest()[:12]
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    return os.path.join(base, f"smstrack-spool-{tag}")


class _Batch:
    __slots__ = ("items", "done", "error")

    def __init__(self) -> None:
        self.items: list[tuple[int, bytes]] = []
        self.done = False
        self.error: OSError | None = None


class Layer:
    """One spool directory and this process's segments in it."""

    def __init__(self, name: str, directory: str, size: int, stats: collections.Counter) -> None:
        self.name, self.directory, self.size, self.stats = name, directory, size, stats
        self.segments: list[Segment] = []
        #: Held while segments are written, made, reset or removed.
        self.io = threading.Lock()
        self._cond = threading.Condition()
        self._batch = _Batch()
        self._flushing = False
        self._pid = os.getpid()
        self.failed_until = 0.0

    def _own(self) -> list[Segment]:
        if self._pid != os.getpid():  # forked: the parent's segments stay its own
            self.segments, self._pid = [], os.getpid()
        return self.segments

    def open(self) -> None:
        """Make this process's segment now (at app start)."""
        with self.io:
            if not self._own():
                self.segments.append(Segment.create(self.directory, self.size))

    def append(self, kind: int, payload: bytes) -> None:
        """Add one record; returns once it is on disk, ``OSError`` if not."""
        cond = self._cond
        with cond:
            batch = self._batch
            batch.items.append((kind, payload))
            while not batch.done:
                if self._flushing:
                    cond.wait()
                    continue
                self._flushing, current, self._batch = True, self._batch, _Batch()
                cond.release()
                try:
                    try:
                        self._write(current.items)
                    except Exception as err:  # never acknowledge a batch that failed
                        current.error = err if isinstance(err, OSError) else OSError(errno.EIO, repr(err))
                finally:
                    cond.acquire()
                    current.done, self._flushing = True, False
                    self.stats["fsync_batches"] += 1
                    self.stats["fsync_records"] += len(current.items)
                    self.stats["fsync_batch_max"] = max(self.stats["fsync_batch_max"], len(current.items))
                    cond.notify_all()
            if batch.error is not None:
                raise batch.error

    def _write(self, items: list[tuple[int, bytes]]) -> None:
        with self.io:
            segments = self._own()
            if not segments:
                segments.append(Segment.create(self.directory, self.size))
            segment = segments[-1]
            data = b"".join(frame(segment.generation, kind, payload) for kind, payload in items)
            if segment.end + len(data) > segment.size:
                if len(data) > self.size - HEADER_SIZE:
                    raise OSError(errno.EFBIG, "a spool batch larger than a segment", self.directory)
                segment = Segment.create(self.directory, self.size)
                segments.append(segment)
                data = b"".join(frame(segment.generation, kind, payload) for kind, payload in items)
            segment.append(data)

    def paths(self) -> set[str]:
        return {s.path for s in self._own()}


class Spool:
    """The spool of one app in one process: its layers, its memory buffer,
    its counters and its background replayer."""

    def __init__(
        self,
        primary: str,
        *,
        fallback: str | None = None,
        size: int = 64 * 1024 * 1024,
        memory_records: int = 10_000,
        replay_seconds: float = 5.0,
        replay: Callable[[], Any] | None = None,
    ) -> None:
        self.stats: collections.Counter = collections.Counter()
        self.primary_dir = primary
        self.layers = [Layer("primary", primary, size, self.stats)]
        if fallback and os.path.abspath(fallback) != os.path.abspath(primary):
            self.layers.append(Layer("fallback", fallback, size, self.stats))
        self.memory: collections.deque[tuple[int, bytes]] = collections.deque()
        self.memory_records = max(0, int(memory_records))
        self._memory_lock = threading.Lock()
        #: Only one thread of this process replays at a time.
        self.replay_lock = threading.Lock()
        self.replay_seconds = float(replay_seconds or 0)
        self._replay = replay
        self._thread: threading.Thread | None = None
        self._thread_pid = 0
        self._thread_lock = threading.Lock()
        self._dirty = False
        self._stop = threading.Event()
        # When the spool goes (its app torn down, or the process exits), its
        # segments that hold nothing waiting go with it.
        weakref.finalize(self, _remove_idle, self.layers, self._stop)

    @property
    def directories(self) -> list[str]:
        return [layer.directory for layer in self.layers]

    def start(self) -> None:
        """Preallocate this process's primary segment, and replay what an
        earlier process left (in the background)."""
        try:
            self.layers[0].open()
        except OSError as err:
            self.stats["primary_errors"] += 1
            logger.error("Could not preallocate the click spool in %s: %s; clicks will go to the fallback"
                         " if the database fails", self.primary_dir, err)
        if any(p not in self.own_paths() for d in self.directories for p in segment_paths(d)):
            self.wake()

    def own_paths(self) -> set[str]:
        return set().union(*(layer.paths() for layer in self.layers))

    def put(self, kind: int, payload: bytes) -> str:
        """Keep one record: returns the layer that took it (``primary``,
        ``fallback``, ``memory``) or ``lost``."""
        where = self._to_disk(kind, payload)
        if where is None:
            with self._memory_lock:
                if len(self.memory) < self.memory_records:
                    self.memory.append((kind, payload))
                    where = "memory"
            if where is None:
                self.stats["lost"] += 1
                logger.critical(
                    "SPOOL FULL: a %s could not be written to the database, the spool, its fallback or memory"
                    " (%d records held): it is LOST. Free disk space in %s.",
                    _KINDS.get(kind, "record"), len(self.memory), " and ".join(self.directories),
                )
                return "lost"
            logger.critical(
                "The spool cannot be written (%s): a %s is held in memory (%d of %d) until the database or"
                " the spool takes it; it is lost if this process stops.",
                " and ".join(self.directories), _KINDS.get(kind, "record"), len(self.memory), self.memory_records,
            )
        self.stats[where] += 1
        self.wake()
        return where

    def _to_disk(self, kind: int, payload: bytes) -> str | None:
        for layer in self.layers:
            now = time.monotonic()
            if layer.failed_until > now:
                continue
            try:
                layer.append(kind, payload)
                return layer.name
            except OSError as err:
                layer.failed_until = now + RETRY_AFTER
                self.stats[f"{layer.name}_errors"] += 1
                logger.error("Could not write the %s spool in %s: %s", layer.name, layer.directory, err)
        return None

    def drain_memory(self, apply: Callable[[int, bytes], Any] | None = None) -> int:
        """Move the records held in memory to the database (``apply``) or,
        when that fails, to a spool layer. Returns how many left memory."""
        moved = 0
        while True:
            with self._memory_lock:
                if not self.memory:
                    return moved
                kind, payload = self.memory[0]
            if apply is not None:
                apply(kind, payload)
            elif self._to_disk(kind, payload) is None:
                return moved
            with self._memory_lock:
                self.memory.popleft()
            moved += 1

    # The background replayer.

    def wake(self) -> None:
        """Make sure the background replayer runs (records are waiting)."""
        if self._replay is None or self.replay_seconds <= 0:
            return
        with self._thread_lock:
            self._dirty = True
            if self._thread is not None and self._thread_pid == os.getpid() and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="smstrack-spool-replay", daemon=True)
            self._thread_pid = os.getpid()
            self._thread.start()

    def stop(self, *_args: Any) -> None:
        """End the background replayer (a later record starts it again)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread() and self._thread_pid == os.getpid():
            thread.join(timeout=5)

    def _run(self) -> None:
        pause = self.replay_seconds
        while not self._stop.wait(pause * _jitter.uniform(0.5, 1.5)):
            with self._thread_lock:
                self._dirty = False
            try:
                left = self._replay()
            except Exception as err:
                pause = min(pause * 2, max(min(MAX_REPLAY_PAUSE, self.replay_seconds * 8), self.replay_seconds))
                logger.warning("Spool replay will try again in about %.0f s: %s", pause, type(err).__name__)
                continue
            pause = self.replay_seconds
            with self._thread_lock:
                if not left and not self._dirty:
                    self._thread = None
                    return

    def counts(self) -> dict[str, int]:
        """What this process spooled, held and lost since it started."""
        s = self.stats
        out = {name: s[name] for name in ("primary", "fallback", "memory", "lost", "replayed", "rejected")}
        out["in_memory"] = len(self.memory)
        out["errors"] = s["primary_errors"] + s["fallback_errors"]
        out["fsync_batches"] = s["fsync_batches"]
        out["fsync_batch_max"] = s["fsync_batch_max"]
        return out


def _remove_idle(layers: list[Layer], stop: threading.Event) -> None:
    stop.set()
    for layer in layers:
        if layer._pid != os.getpid():
            continue
        for segment in list(layer.segments):
            try:
                if not any(r.state == WAITING for r in segment.records()):
                    segment.remove()
                else:
                    segment.close()
            except OSError:
                pass
        layer.segments.clear()


_KINDS = {1: "click", 2: "conversion", 3: "landing confirmation"}
