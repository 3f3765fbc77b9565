"""The job queue behind :func:`flask_smstrack.state.enqueue`.

A job is a function named by its dotted path (``"package.module:function"``)
with plain arguments (numbers, strings, lists, dicts), so that a worker on
another node can run it. Jobs are idempotent: running one twice does no harm.

With ``SMSTRACK_REDIS_URL`` set, jobs go on the RQ queue named after
``SMSTRACK_REDIS_PREFIX`` (``smstrack`` by default), serialized as JSON, and
``flask smstrack worker`` runs them (see :mod:`.worker`). Without it, a job
runs inline, in the caller's app context, and its result is returned.

RQ's own keys always start with ``rq:`` (RQ has no prefix setting): the
prefix separates apps sharing a server through the queue's name and the
job ids, which start with it too.
"""
from __future__ import annotations

import logging
import os
import re
import socket
from dataclasses import dataclass
from typing import Any

from flask import Flask

from ..config import Keys
from ..state import redis_client, resolve_job

logger = logging.getLogger("flask_smstrack")

#: Statuses of a job that is waiting or running: a job with a fixed id is
#: not enqueued again while its last run is in one of them.
ACTIVE = frozenset({"queued", "started", "deferred", "scheduled"})
#: How long RQ keeps a finished job's result (link check results are read
#: from it), and a failed job.
RESULT_TTL = 7 * 24 * 3600
FAILURE_TTL = 7 * 24 * 3600
_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


def queue_name(app: Flask) -> str:
    """The RQ queue of this app: ``SMSTRACK_REDIS_PREFIX`` (``smstrack``)."""
    return app.config.get(Keys.REDIS_PREFIX) or "smstrack"


def job_key(app: Flask, *parts: Any) -> str:
    """A fixed job id, e.g. ``smstrack-send-7``: the prefix and ``parts``,
    in the characters RQ allows in an id."""
    text = "-".join([queue_name(app), *(str(p) for p in parts)])
    return _ID_CHARS.sub("-", text).strip("-")


def rq_function(name: str) -> str:
    """RQ's spelling of a job's name: ``pkg.mod:func`` -> ``pkg.mod.func``."""
    module, _, attr = name.partition(":")
    return f"{module}.{attr}" if attr else module


class Jobs:
    """Runs jobs for one app: on RQ when ``SMSTRACK_REDIS_URL`` is set,
    otherwise inline, in the caller's app context."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    @property
    def queued(self) -> bool:
        """Whether jobs go on a queue (``SMSTRACK_REDIS_URL`` is set)."""
        return bool(self.app.config.get(Keys.REDIS_URL))

    def queue(self, connection=None):
        """The app's RQ queue; ``None`` without ``SMSTRACK_REDIS_URL``."""
        if not self.queued:
            return None
        from rq import Queue
        from rq.serializers import JSONSerializer

        connection = connection or redis_client(self.app)
        return Queue(queue_name(self.app), connection=connection, serializer=JSONSerializer)

    def enqueue(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Run the job ``name`` with ``args``: the RQ job when queued, else
        the job's result, run now."""
        return self.submit(name, args, kwargs)

    def submit(
        self,
        name: str,
        args: tuple | list = (),
        kwargs: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        timeout: int | None = None,
        retries: int = 0,
        meta: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> Any:
        """Enqueue ``name(*args, **kwargs)``; with ``key`` (see :func:`job_key`)
        at most one such job waits or runs at a time: while one does, it is
        returned instead of a new one. ``retries`` runs a job again when it
        fails or its worker dies (a killed worker's job is found by
        :func:`requeue_abandoned`). ``timeout`` is in seconds, ``-1`` for none.
        Inline (no Redis), the job runs now and its result is returned."""
        kwargs = kwargs or {}
        queue = self.queue()
        if queue is None:
            return resolve_job(name)(*args, **kwargs)
        from rq import Retry
        from rq.exceptions import DuplicateJobError, NoSuchJobError

        options: dict[str, Any] = {
            "args": list(args), "kwargs": kwargs, "timeout": timeout, "result_ttl": RESULT_TTL,
            "failure_ttl": FAILURE_TTL, "meta": meta, "description": description,
            "retry": Retry(max=retries) if retries else None,
        }
        if key is None:
            return queue.enqueue_call(rq_function(name), **options)
        for _ in range(5):
            try:
                return queue.enqueue_call(rq_function(name), job_id=key, unique=True, **options)
            except DuplicateJobError:
                pass
            try:
                existing = queue.fetch_job(key)
                status = existing.get_status() if existing is not None else None
            except NoSuchJobError:
                continue
            if existing is None:
                continue
            if str(getattr(status, "value", status)) in ACTIVE:
                return existing
            existing.delete()  # its last run ended: this one takes its id
        raise RuntimeError(f"could not enqueue job {key}: other enqueues of it kept winning")

    def fetch(self, key: str):
        """The RQ job with id ``key``, or ``None`` (also without Redis)."""
        queue = self.queue()
        return queue.fetch_job(key) if queue is not None else None


@dataclass
class JobView:
    """What a page or a command shows of a job."""

    id: str
    status: str
    meta: dict[str, Any]
    result: Any = None
    error: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def as_dict(self) -> dict[str, Any]:
        done, total = self.meta.get("done"), self.meta.get("total")
        return {
            "id": self.id, "status": self.status, "active": self.active, "done": done, "total": total,
            "message": self.meta.get("message"), "error": self.error,
        }


def job_view(job) -> JobView | None:
    """A job's status, progress (``job.meta``), result and last error line."""
    if job is None:
        return None
    from rq.exceptions import NoSuchJobError

    try:
        status = job.get_status()
    except NoSuchJobError:
        return None
    if status is None:
        return None
    status = str(getattr(status, "value", status))
    result = error = None
    if status == "finished":
        result = job.return_value()
    elif status in ("failed", "stopped", "canceled"):
        latest = job.latest_result()
        text = getattr(latest, "exc_string", None) or ""
        lines = [line for line in text.strip().splitlines() if line.strip()]
        error = lines[-1] if lines else status
    return JobView(job.id, status, dict(job.meta or {}), result, error)


def current_job():
    """The RQ job running now (in a worker), or ``None`` (inline)."""
    try:
        from rq import get_current_job
    except ImportError:  # pragma: no cover - depends on the install
        return None
    return get_current_job()


def report_progress(**values: Any) -> None:
    """Store ``values`` (``done``, ``total``, ``message``...) in the running
    job's meta, where the CLI and the dashboard read the progress from; does
    nothing inline, unless the job runs on a thread of the web process
    (:mod:`.local`)."""
    job = current_job()
    if job is None:
        from .local import report

        report(**values)
        return
    job.meta.update(values)
    job.save_meta()


def queue_stats(app: Flask) -> dict[str, int] | None:
    """Jobs waiting, running, failed and scheduled on the app's queue, and
    the workers listening to it; ``None`` without ``SMSTRACK_REDIS_URL``."""
    queue = Jobs(app).queue()
    if queue is None:
        return None
    from rq import Worker

    return {
        "queued": queue.count,
        "started": queue.started_job_registry.get_job_count(cleanup=False),
        "failed": queue.failed_job_registry.get_job_count(cleanup=False),
        "scheduled": queue.scheduled_job_registry.get_job_count(cleanup=False),
        "workers": Worker.count(queue=queue),
    }


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine. A zombie does not: a
    work-horse killed with its worker is left as one where nothing reaps
    orphans (a container whose first process is not an init)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # "pid (command) state ...": the command may hold spaces and parentheses.
            state = stat.read().rpartition(b")")[2].split()[:1]
    except OSError:
        # No /proc (not Linux), one that hides others' processes, or the
        # process ended just now: the signal said it was there.
        return True
    return state not in ([b"Z"], [b"X"])


def _horse_alive(queue, job_id: str, host: str) -> bool:
    """Whether the work-horse that ran the job (its ``host`` and ``pid``
    in the job's meta, see :mod:`.worker`) still runs on this host."""
    job = queue.fetch_job(job_id)
    horse = (job.meta or {}).get("horse") if job is not None else None
    if not isinstance(horse, dict) or horse.get("host") != host or not horse.get("pid"):
        return False
    return process_alive(int(horse["pid"]))


def requeue_abandoned(queue) -> list[str]:
    """Give the jobs of dead workers back to RQ: each job in the queue's
    started registry whose worker is gone (its key expired), or ran on this
    host under a process that no longer exists (``kill -9``), is marked
    expired, and RQ's own cleanup then runs it again (when it has retries
    left) or fails it. A worker on another host that died is found by RQ
    once its heartbeat expires (about 90 s). Returns the jobs' ids."""
    from rq import Worker
    from rq.executions import Execution

    registry = queue.started_job_registry
    host = socket.gethostname()
    dead: list[str] = []
    for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
        try:
            execution = Execution.fetch(execution_id, job_id, queue.connection)
        except ValueError:  # the execution's hash expired: RQ's cleanup handles it
            continue
        worker = None
        if execution.worker_name:
            worker = Worker.find_by_key(
                Worker.redis_worker_namespace_prefix + execution.worker_name, connection=queue.connection,
                serializer=queue.serializer,
            )
        if worker is not None and not (worker.hostname == host and worker.pid and not process_alive(int(worker.pid))):
            continue
        if _horse_alive(queue, job_id, host):  # the worker died, its work-horse still runs the job
            continue
        registry.connection.zadd(registry.key, {execution.composite_key: 0}, xx=True)
        dead.append(job_id)
    if dead:
        logger.warning("Jobs of dead workers run again: %s", ", ".join(dead))
        registry.cleanup()
    return dead
