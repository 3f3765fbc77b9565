"""Jobs on a thread of the web process, for apps without Redis: what the
dashboard's Send button runs when there is no ``SMSTRACK_REDIS_URL``.

A small business on SQLite runs one machine and no worker: pressing "Send"
should send. A send takes minutes (one message a second at Twilio's
long-code rate), far longer than a web request may last, so the request
starts the send on a thread of its process and returns; the page then
follows it like a queued job. Its state (status, progress, result) is a
small JSON file in ``<instance>/smstrack-jobs/``, written atomically, so
that every process of the server on this machine reads the same progress.

A thread dies with its process (a server restart): the file then still says
``started`` under a process that no longer exists, and the job reads as
``stopped``. Sending again goes on where it stopped (each message is claimed
before it goes, see :mod:`flask_smstrack.sms.sending`), and asks Twilio about
the messages the stopped run left in an unknown state.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from flask import Flask

from ..state import get_state, resolve_job
from .queue import ACTIVE, JobView, process_alive

logger = logging.getLogger("flask_smstrack")

_running: dict[tuple[str, str], threading.Thread] = {}
_lock = threading.Lock()
_current = threading.local()


def _path(app: Flask, key: str) -> Path:
    return Path(app.instance_path) / "smstrack-jobs" / f"{key}.json"


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def _write(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_text(json.dumps(state, default=str), "utf-8")
    os.replace(tmp, path)


def _status(path: Path, state: dict[str, Any]) -> str:
    status = state.get("status") or "failed"
    if status not in ACTIVE:
        return status
    pid = int(state.get("pid") or 0)
    if pid == os.getpid():
        thread = _running.get((str(path.parent), path.stem))
        return status if thread is not None and thread.is_alive() else "stopped"
    return status if pid and process_alive(pid) else "stopped"


def fetch(app: Flask, key: str) -> JobView | None:
    """The job ``key`` run on a thread here (or by another process of this
    server), as a :class:`~.queue.JobView`; ``None`` when there was none."""
    path = _path(app, key)
    state = _read(path)
    if state is None:
        return None
    status = _status(path, state)
    error = state.get("error")
    if status == "stopped" and not error:
        error = "the web process running it stopped (a restart?); send again to go on where it stopped"
    return JobView(key, status, dict(state.get("meta") or {}), state.get("result"), error)


def report(**values: Any) -> bool:
    """Store progress ``values`` for the local job running on this thread;
    ``False`` when this thread runs none."""
    path = getattr(_current, "path", None)
    if path is None:
        return False
    state = _read(path) or {}
    state.setdefault("meta", {}).update(values)
    state["updated"] = dt.datetime.now(dt.timezone.utc).isoformat()
    _write(path, state)
    return True


def start(
    app: Flask, key: str, name: str, args: list | tuple = (), kwargs: dict[str, Any] | None = None, *,
    resumable: bool = False,
) -> JobView:
    """Run ``name(*args, **kwargs)`` on a thread of this process, inside the
    app, unless the job ``key`` already runs (here or in another process of
    this server): then that one's view is returned. When the job's last run
    stopped with its process and it is ``resumable``, it gets
    ``resumed=True`` (the RQ job's run count, see :func:`.tasks.send`)."""
    path = _path(app, key)
    with _lock:
        before = fetch(app, key)
        if before is not None and before.active:
            return before
        kwargs = dict(kwargs or {})
        if resumable and before is not None and before.status == "stopped":
            kwargs["resumed"] = True
        now = dt.datetime.now(dt.timezone.utc).isoformat()
        _write(path, {"status": "started", "pid": os.getpid(), "started": now, "updated": now, "meta": {}})
        thread = threading.Thread(target=_run, args=(app, path, name, list(args), kwargs), name=f"smstrack-{key}",
                                  daemon=True)
        _running[(str(path.parent), path.stem)] = thread
        thread.start()
    return fetch(app, key)  # type: ignore[return-value]


def _run(app: Flask, path: Path, name: str, args: list, kwargs: dict[str, Any]) -> None:
    _current.path = path
    result = error = None
    try:
        with app.app_context():
            try:
                result = resolve_job(name)(*args, **kwargs)
            finally:
                get_state().db.session.remove()
    except Exception as err:
        logger.exception("Job %s on a thread of the web process failed", name)
        error = f"{type(err).__name__}: {err}"
    finally:
        _current.path = None
    state = _read(path) or {}
    state.update(status="failed" if error else "finished", result=result, error=error,
                 updated=dt.datetime.now(dt.timezone.utc).isoformat())
    _write(path, state)
