"""The RQ worker of an app: ``flask smstrack worker``.

:class:`AppWorker` is RQ's forking worker that knows the app: each job runs
in a work-horse process, inside the app's context, with database
connections of its own (the pool inherited from the parent is dropped, never
shared across ``fork``). Its parent, between jobs and while a job runs:

- gives the jobs of dead workers back to RQ (:func:`.queue.requeue_abandoned`):
  a send killed with ``kill -9`` runs again, and goes on where it stopped;
- enqueues the periodic jobs (:data:`.periodic.PERIODIC`: spool replay, rollup
  catch-up, PostgreSQL partitions ahead) every ``SMSTRACK_JOB_INTERVAL`` seconds, with fixed ids so that
  they never pile up however many workers run.

A plain ``rq worker`` cannot run these jobs: it does not know the app.
"""
from __future__ import annotations

import logging
import math
import os
import socket
import time
from typing import Any

from flask import Flask

from ..config import Keys
from .periodic import due_jobs
from .queue import Jobs, job_key, requeue_abandoned

logger = logging.getLogger("flask_smstrack")

def enqueue_periodic(app: Flask) -> list[str]:
    """Enqueue each periodic job (:data:`.periodic.PERIODIC`) unless it
    already waits or runs; returns the ids of those that now wait or run."""
    jobs = Jobs(app)
    return [
        jobs.submit(name, key=job_key(app, key), timeout=3600, description=name).id
        for name, key in due_jobs(app)
    ]


def _make_worker_class():
    from rq import Worker

    class AppWorker(Worker):
        """RQ's forking worker, running every job inside ``app``'s context."""

        def __init__(self, *args: Any, app: Flask, interval: float | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.app = app
            self.interval = float(interval if interval is not None else app.config[Keys.JOB_INTERVAL])
            self._parent_pid = os.getpid()
            self._next_periodic = 0.0

        def perform_job(self, job, queue, execution) -> bool:
            with self.app.app_context():
                if os.getpid() != self._parent_pid:
                    from ..state import get_state

                    # Connections opened before the fork belong to the parent.
                    get_state().db.engine.dispose(close=False)
                    job.meta["horse"] = {"host": socket.gethostname(), "pid": os.getpid()}
                    job.meta["runs"] = int(job.meta.get("runs") or 0) + 1
                    job.save_meta()
                return super().perform_job(job, queue, execution)

        def tick(self) -> None:
            """Requeue dead workers' jobs; enqueue the periodic jobs when due."""
            for queue in self.queues:
                try:
                    requeue_abandoned(queue)
                except Exception:
                    logger.exception("Could not look for the jobs of dead workers")
            if self.interval > 0 and time.monotonic() >= self._next_periodic:
                self._next_periodic = time.monotonic() + self.interval
                try:
                    with self.app.app_context():
                        enqueue_periodic(self.app)
                except Exception:
                    logger.exception("Could not enqueue the periodic jobs")

        def run_maintenance_tasks(self) -> None:
            self.tick()
            super().run_maintenance_tasks()

        def maintain_heartbeats(self, job, execution) -> None:
            super().maintain_heartbeats(job, execution)
            self.tick()

    return AppWorker


def make_worker(app: Flask, *, interval: float | None = None, name: str | None = None):
    """An :class:`AppWorker` on the app's queue, with a Redis connection of
    its own (a worker blocks on Redis for longer than the app's socket
    timeout)."""
    import redis
    from rq.serializers import JSONSerializer

    url = app.config.get(Keys.REDIS_URL)
    if not url:
        raise RuntimeError(f"A worker needs a Redis server: set {Keys.REDIS_URL}, e.g. redis://127.0.0.1:6379/0.")
    connection = redis.Redis.from_url(url)
    queue = Jobs(app).queue(connection)
    # A short Redis wait between ticks, and maintenance (with the periodic
    # jobs and the search for dead workers' jobs) at every tick.
    seconds = float(interval if interval is not None else app.config[Keys.JOB_INTERVAL])
    # Whole seconds for RQ; a fraction of one rounds up, not down to "none".
    every = math.ceil(seconds) if seconds > 0 else 60
    worker_ttl = max(every, 5) + 15
    return _make_worker_class()(
        [queue], connection=connection, serializer=JSONSerializer, app=app, interval=interval, name=name,
        worker_ttl=worker_ttl, maintenance_interval=max(every, 5), job_monitoring_interval=min(every, 30),
    )
