"""Keeps SQLite's write-ahead log small under sustained load.

The click writer turns SQLite's automatic checkpoints off, so that no
visitor's redirect waits for the fsync of one. Checkpoints run here instead,
on a connection of their own in a background thread of each process:

- about once a second, a ``PASSIVE`` checkpoint copies the log into the
  database without blocking anyone;
- once the log file passes a quarter of its limit, a ``TRUNCATE``
  checkpoint waits (at most :attr:`WalGuard.BUSY_MS`) for readers to leave
  the log and cuts the file back to zero bytes. Readers that keep the log in
  use are the reason a ``PASSIVE`` checkpoint alone lets it grow for ever:
  SQLite only starts the log over when no reader needs its old pages.

One process at a time checkpoints a database (a non-blocking lock on a file
beside it: the others skip their turn), and a process that wrote nothing
since its last turn does not try. The redirect's cost is a counter per click
and an ``os.stat`` of the log after every few writes (one per 64 KiB of
trigger size: a click adds up to about 16 KiB of pages to the log), so a
burst wakes the thread long before the log nears its limit, however fast the
clicks come.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

logger = logging.getLogger("flask_smstrack")


class WalGuard:
    """Checkpoints one SQLite file's log; one per click writer."""

    #: Seconds between ticks of the background thread.
    INTERVAL = 1.0
    #: Bytes of trigger size per look at the log's size from the click path.
    STAT_BYTES = 64 * 1024
    #: Seconds before a ``TRUNCATE`` that readers made fail is tried again;
    #: doubled after each failure up to :attr:`INTERVAL`, so that a long
    #: report holding the log costs clicks little, but no longer doubled
    #: once the log is past half its limit.
    RETRY = 0.05
    #: Longest a ``TRUNCATE`` checkpoint waits for readers, in milliseconds.
    #: Click writes wait for it meanwhile.
    BUSY_MS = 50

    def __init__(self, engine, limit_bytes: int, write_lock=None) -> None:
        self.engine = engine
        #: The click writers' lock: held during a ``TRUNCATE``, so that they
        #: wait on it (and wake the moment it ends) rather than in SQLite's
        #: busy handler, which sleeps in steps of up to 25 ms.
        self.write_lock = write_lock if write_lock is not None else contextlib.nullcontext()
        self.limit = int(limit_bytes)
        self.trigger = max(self.limit // 4, 1)
        database = os.path.abspath(engine.url.database)
        self.wal_path = database + "-wal"
        self.lock_path = database + ".smstrack-checkpoint"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._writes = 0
        self.stat_every = max(self.trigger // self.STAT_BYTES, 1)
        self._next_stat = 0
        #: Checkpoints this process ran, by mode, and ``TRUNCATE``s that
        #: readers made give up (for tests and the curious).
        self.counts = {"PASSIVE": 0, "TRUNCATE": 0, "busy": 0}

    # ----------------------------------------------------------- click path

    def wrote(self) -> None:
        """Called after each click write: wakes the thread early when the
        log has passed its trigger size."""
        self._writes += 1
        if self._writes < self._next_stat:
            return
        self._next_stat = self._writes + self.stat_every
        if self.wal_size() >= self.trigger:
            self._wake.set()

    def wal_size(self) -> int:
        try:
            return os.stat(self.wal_path).st_size
        except OSError:
            return 0

    # ----------------------------------------------------------- thread

    def start(self) -> None:
        """Start the thread, once per process (threads may ask at once)."""
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
                return
            self._stop = threading.Event()
            self._wake = threading.Event()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="smstrack-checkpoint", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread() and self._pid == os.getpid():
            thread.join(timeout=5)
        self._thread = None

    def _run(self) -> None:
        fairy = self.engine.raw_connection()
        fairy.detach()
        connection = fairy.dbapi_connection
        connection.isolation_level = None
        connection.execute(f"PRAGMA busy_timeout={int(self.BUSY_MS)}")
        lock_fd = self._open_lock()
        seen = self._writes
        retry = 0.0  # seconds until the next try of a TRUNCATE; 0 when none is owed
        try:
            while True:
                if retry:
                    # A burst must not cut the back-off short.
                    self._stop.wait(retry)
                else:
                    self._wake.wait(self.INTERVAL)
                self._wake.clear()
                if self._stop.is_set():
                    break
                if self._writes == seen and not retry:
                    continue  # nothing new from this process
                seen = self._writes
                try:
                    done = self._checkpoint(connection, lock_fd)
                except Exception:
                    done = True
                    logger.warning("SQLite checkpoint failed; it will be tried again", exc_info=True)
                if done:
                    retry = 0.0
                elif self.wal_size() >= self.limit // 2:
                    retry = self.RETRY
                else:
                    retry = min(retry * 2 or self.RETRY, self.INTERVAL)
            # A last one, so that a stopped app leaves a small log behind.
            with contextlib.suppress(Exception):
                self._checkpoint(connection, lock_fd)
        finally:
            connection.close()
            if lock_fd is not None:
                os.close(lock_fd)

    def _open_lock(self) -> int | None:
        if fcntl is None:  # pragma: no cover - Windows
            return None
        try:
            return os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            logger.warning("cannot open %s: checkpoints run without it", self.lock_path, exc_info=True)
            return None

    def _checkpoint(self, connection, lock_fd: int | None) -> bool:
        """One checkpoint if no other process is running one; ``False`` when
        a ``TRUNCATE`` was due and readers kept it from finishing."""
        if lock_fd is not None:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True  # another process is at it
        try:
            # PASSIVE first, blocking no one: it copies most of the log, so
            # that TRUNCATE (which holds writers back) has little left to do.
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.counts["PASSIVE"] += 1
            if self.wal_size() < self.trigger:
                return True
            with self.write_lock:
                busy = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            self.counts["TRUNCATE"] += 1
            if busy:
                self.counts["busy"] += 1
                return False
            return True
        finally:
            if lock_fd is not None:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)
