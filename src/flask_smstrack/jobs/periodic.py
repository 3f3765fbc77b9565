"""Periodic jobs: spool replay, rollup catch-up, PostgreSQL partitions
ahead and outbound webhooks, every ``SMSTRACK_JOB_INTERVAL`` seconds.

With ``SMSTRACK_REDIS_URL`` set, ``flask smstrack worker`` enqueues them
(:mod:`.worker`). Without Redis there is no worker: each web process runs a
daemon thread (:class:`InProcess`, started by its first request and again
after a fork) that runs them itself, one process of the machine at a time
(a non-blocking lock on a file in the instance folder; the others skip
their turn). Reports never build rollups inside a request, so this thread is
what keeps them quick on a one-machine install.
"""
from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
from importlib import import_module

from flask import Flask

from ..config import Keys
from ..state import get_state, resolve_job

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

logger = logging.getLogger("flask_smstrack")
#: Jitter from the system's randomness, never the random module's shared
#: state (which a seeded caller may rely on).
_jitter = random.SystemRandom()

#: The periodic jobs: their name, the last part of their fixed id, and the
#: databases they are for (``None``: every one). A job whose module or
#: function does not exist in this install is left out, with one warning
#: per process.
PERIODIC: tuple[tuple[str, str, frozenset[str] | None], ...] = (
    ("flask_smstrack.tracking.spool:replay_spool", "replay-spool", None),
    ("flask_smstrack.reports.rollups:catch_up", "rollups", None),
    ("flask_smstrack.db.partitions:ensure_partitions", "partitions", frozenset({"postgresql"})),
    ("flask_smstrack.integrations.webhooks_out:dispatch", "webhooks", None),
)
_missing_warned: set[str] = set()


def _exists(name: str) -> bool:
    module, _, attr = name.partition(":")
    try:
        return callable(getattr(import_module(module), attr, None))
    except ImportError:
        return False


def due_jobs(app: Flask) -> list[tuple[str, str]]:
    """``(name, key)`` of the periodic jobs for this app's database that
    exist in this install."""
    with app.app_context():
        dialect = get_state().db.engine.dialect.name
    due = []
    for name, key, databases in PERIODIC:
        if databases is not None and dialect not in databases:
            continue
        if not _exists(name):
            if name not in _missing_warned:
                _missing_warned.add(name)
                logger.warning("Periodic job %s skipped: this version of flask-smstrack has no %s", key, name)
            continue
        due.append((name, key))
    return due


def run_due(app: Flask) -> dict[str, str]:
    """Run every periodic job now, in this thread; ``{key: "ok" | "failed"}``.
    A failing job is logged and does not stop the others."""
    outcome = {}
    for name, key in due_jobs(app):
        try:
            with app.app_context():
                resolve_job(name)()
            outcome[key] = "ok"
        except Exception:
            logger.exception("Periodic job %s failed; it runs again in %s s", key, app.config[Keys.JOB_INTERVAL])
            outcome[key] = "failed"
    return outcome


class InProcess:
    """The periodic jobs on a daemon thread of each web process, for apps
    without Redis."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.interval = float(app.config[Keys.JOB_INTERVAL] or 0)
        self.enabled = self.interval > 0 and not app.config.get(Keys.REDIS_URL)
        self.lock_path = os.path.join(app.instance_path, "smstrack-periodic.lock")
        self._pid: int | None = None
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Rounds this process ran, and rounds it skipped because another
        #: process held the lock (for tests and the curious).
        self.counts = {"ran": 0, "skipped": 0}

    def ensure_started(self) -> None:
        """Start the thread once per process: cheap on every request."""
        if self._pid == os.getpid() or not self.enabled:
            return
        with self._start_lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, name="smstrack-periodic", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread, and wait for a round it is running to end."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread() and self._pid == os.getpid():
            thread.join(timeout)

    def _run(self) -> None:
        stop = self._stop
        # Jitter, so that the processes of one server do not all wake at once.
        while not stop.wait(self.interval * _jitter.uniform(0.8, 1.2)):
            try:
                self.round()
            except Exception:  # pragma: no cover - defensive: the thread must live on
                logger.exception("Periodic jobs failed")

    def round(self) -> dict[str, str] | None:
        """One round, if no other process is running one: the jobs' outcome,
        or ``None`` when skipped."""
        with self._held() as held:
            if not held:
                self.counts["skipped"] += 1
                return None
            self.counts["ran"] += 1
            return run_due(self.app)

    @contextlib.contextmanager
    def _held(self):
        if fcntl is None:  # pragma: no cover - Windows: every process runs them
            yield True
            return
        os.makedirs(os.path.dirname(self.lock_path), exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
