"""``GET /smstrack/healthz``: is this node fit to take traffic?

For load balancers, which call it every few seconds: no login, never rate
limited, never cached, never a 500, and it writes nothing. It checks

- ``database``: a ``SELECT 1`` on a fresh connection of its own, opened
  with a short connect timeout (PostgreSQL), so that a stopped or hung
  server fails the check within seconds instead of hanging it;
- ``redis``: a ping, with a short socket timeout, of each Redis URL the
  config names (today ``SMSTRACK_RATELIMIT_STORAGE_URI`` when it is a
  ``redis://`` URL);
- ``spool``: the clicks waiting in the spool (files and records), and
  whether the spool directory can be written. A backlog alone does not
  fail the check: the node still serves every click.
- ``jobs``: with ``SMSTRACK_REDIS_URL``, the background jobs queued,
  running (``started``), failed and scheduled on the RQ queue, and the
  workers listening to it. Only an unreadable queue fails it: jobs that
  wait or failed do not stop the node from serving.
- ``breaker``: the click path's circuit breaker in the process that
  answered (``ok``, ``open`` or ``probing``, with its failures and wait),
  shown but never failing.

The answer is ``200 {"status": "ok", "checks": {...}}``, or ``503`` with
``"status": "failing"``, the failing checks' names and, for each, a
sentence saying what to do. It names no URL, host or password.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from ..config import Keys
from ..jobs.queue import queue_stats
from ..state import get_state
from ..tracking.spool import spool_files

logger = logging.getLogger("flask_smstrack")

bp = Blueprint("smstrack_health", __name__)

#: Seconds a check may take: connecting to the database (libpq's floor is
#: 2 s) and a Redis ping.
DB_CONNECT_TIMEOUT = 2
REDIS_TIMEOUT = 1.0

#: Config keys that may name a Redis server, checked when they hold a
#: ``redis://``, ``rediss://`` or ``unix://`` URL.
REDIS_KEYS = (Keys.REDIS_URL, Keys.RATELIMIT_STORAGE_URI)
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass
class Check:
    """The result of one check: ``ok``, ``failing`` or ``not configured``."""

    status: str
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    ms: float = 0.0

    @property
    def failing(self) -> bool:
        return self.status == "failing"

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, **self.details}
        if self.message:
            out["message"] = self.message
        return out


class _Probes:
    """What an app keeps between checks: the database engine of its own,
    Redis clients, and the spool files' line counts."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.redis: dict[str, Any] = {}
        self.lines: dict[str, tuple[int, int, int]] = {}  # path -> (inode, size, lines)


def _probes(app: Flask) -> _Probes:
    probes = app.extensions.get("smstrack_health")
    if probes is None:
        probes = app.extensions["smstrack_health"] = _Probes()
    return probes


def _health_engine(app: Flask) -> Engine:
    """The app's engine for SQLite; for a database server, an engine of its
    own that opens a fresh connection per check with short timeouts (a
    pooled connection to a hung server would wait forever)."""
    engine = get_state().db.engine
    if engine.dialect.name == "sqlite":
        return engine
    probes = _probes(app)
    if probes.engine is None:
        options = app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
        connect_args = dict(options.get("connect_args") or {})
        if engine.dialect.driver in ("psycopg", "psycopg2"):
            # libpq's timeout covers the whole handshake, so a stopped
            # (SIGSTOP) server fails here too. No startup options: PgBouncer
            # refuses them.
            connect_args["connect_timeout"] = DB_CONNECT_TIMEOUT
        probes.engine = create_engine(engine.url, poolclass=NullPool, connect_args=connect_args)
    return probes.engine


def check_database(app: Flask) -> Check:
    try:
        with _health_engine(app).connect() as connection:
            connection.execute(text("SELECT 1")).scalar_one()
        return Check("ok")
    except Exception as err:
        logger.warning("Health check: the database did not answer: %s", type(err).__name__)
        return Check(
            "failing",
            "The database did not answer a SELECT 1 within a few seconds: check that it runs,"
            " accepts connections from this node and that DATABASE_URL (SQLALCHEMY_DATABASE_URI) points at it.",
        )


def redis_urls(app: Flask) -> list[tuple[str, str]]:
    """``(key, url)`` for each config key that names a Redis server."""
    seen: dict[str, str] = {}
    for key in REDIS_KEYS:
        url = app.config.get(key)
        if isinstance(url, str) and url.startswith(_REDIS_SCHEMES) and url not in seen:
            seen[url] = key
    return [(key, url) for url, key in seen.items()]


def check_redis(app: Flask) -> Check:
    urls = redis_urls(app)
    if not urls:
        return Check("not configured")
    probes = _probes(app)
    for key, url in urls:
        try:
            client = probes.redis.get(url)
            if client is None:
                import redis

                client = probes.redis[url] = redis.Redis.from_url(
                    url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
                )
            if not client.ping():
                raise RuntimeError("no PONG")
        except ImportError:
            return Check("failing", f"{key} names a Redis server but the redis package is missing:"
                         " install flask-smstrack[redis].")
        except Exception as err:
            logger.warning("Health check: Redis (%s) did not answer: %s", key, type(err).__name__)
            return Check(
                "failing",
                f"Redis did not answer a ping within {REDIS_TIMEOUT:g} s: check that it runs,"
                f" accepts connections from this node and that {key} points at it.",
            )
    return Check("ok")


def _count_lines(probes: _Probes, path: str) -> int:
    """Lines of a spool file, counting only what was appended since the
    last check (spool files only grow until they are replayed)."""
    st = os.stat(path)
    inode, size, lines = probes.lines.get(path, (st.st_ino, 0, 0))
    if inode != st.st_ino or st.st_size < size:
        size = lines = 0
    if st.st_size > size:
        with open(path, "rb") as f:
            f.seek(size)
            while chunk := f.read(1 << 20):
                lines += chunk.count(b"\n")
    probes.lines[path] = (st.st_ino, st.st_size, lines)
    return lines


def check_spool(app: Flask) -> Check:
    spool_dir = get_state().spool_dir
    probes = _probes(app)
    paths = spool_files(spool_dir)
    records = 0
    for path in paths:
        try:
            records += _count_lines(probes, path)
        except FileNotFoundError:  # replayed meanwhile
            continue
    for gone in set(probes.lines) - set(paths):
        del probes.lines[gone]
    details = {"files": len(paths), "records": records}
    # Where the spool would be made: the directory, or its nearest parent.
    where = spool_dir
    while not os.path.exists(where) and os.path.dirname(where) != where:
        where = os.path.dirname(where)
    if not os.path.isdir(where) or not os.access(where, os.W_OK | os.X_OK):
        return Check(
            "failing",
            "The spool directory cannot be written, so clicks would be lost while the database is down:"
            f" make {Keys.SPOOL_DIR} (or the instance folder) writable by the app's user.",
            details,
        )
    return Check("ok", details=details)


def check_jobs(app: Flask) -> Check:
    try:
        stats = queue_stats(app)
    except Exception as err:
        logger.warning("Health check: the job queue could not be read: %s", type(err).__name__)
        return Check("failing", f"The job queue in Redis could not be read: check that Redis runs and that"
                     f" {Keys.REDIS_URL} points at it.")
    if stats is None:
        return Check("not configured")
    return Check("ok", details=stats)



def check_breaker(app: Flask) -> Check:
    """The click path's circuit breaker in this process: ``ok`` (closed),
    ``open`` (clicks go to the spool, links come from the cache) or
    ``probing``. Never failing: an open breaker still serves every known
    link; the database check says whether the database is down."""
    details = get_state().hot.snapshot()
    status = details.pop("status")
    return Check("ok" if status == "closed" else status, details=details)


CHECKS = {
    "database": check_database, "redis": check_redis, "spool": check_spool, "jobs": check_jobs, "breaker": check_breaker,
}


def run_checks(app: Flask) -> dict[str, Check]:
    """Every check, each timed; an exception fails only its own check."""
    results = {}
    for name, check in CHECKS.items():
        start = time.perf_counter()
        try:
            result = check(app)
        except Exception:
            logger.exception("Health check %s failed", name)
            result = Check("failing", f"The {name} check could not run: see the app's log.")
        result.ms = (time.perf_counter() - start) * 1000
        results[name] = result
    return results


@bp.get("/healthz")
def healthz():
    try:
        results = run_checks(current_app._get_current_object())  # type: ignore[attr-defined]
        failing = [name for name, r in results.items() if r.failing]
        body: dict[str, Any] = {"status": "failing" if failing else "ok"}
        if failing:
            body["failing"] = failing
        body["checks"] = {name: r.public() for name, r in results.items()}
        code = 503 if failing else 200
    except Exception:
        logger.exception("Health check failed")
        body, code = {"status": "failing", "failing": ["healthz"]}, 503
    response = jsonify(body)
    response.status_code = code
    return response


@bp.after_request
def _headers(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
