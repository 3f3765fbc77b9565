"""What the spool's fault tests share: a throwaway cluster with the schema,
the tracker under gunicorn pointed at it, a load of clicks, and counts of
what went in and what was stored, by id."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from e2e.support import clean_env, fetch, free_port  # noqa: E402

FULL = os.environ.get("FLASK_SMSTRACK_FAULTS") == "full"


def migrate(url: str, instance: Path) -> None:
    from wsgi import create_app, db

    from flask_smstrack.db.migrate import upgrade

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "faults", "TESTING": True,
                      "SMSTRACK_SPOOL_DIR": str(instance / "migrate-spool"), "SMSTRACK_SPOOL_SIZE_BYTES": 1 << 16,
                      "SMSTRACK_SPOOL_REPLAY_SECONDS": 0})
    with app.app_context():
        upgrade()
        db.engine.dispose()


_shared: list = []


def shared_cluster(tmp: Path):
    """One throwaway cluster, with the schema, for this process's spool
    fault tests (initdb takes seconds); removed when the process exits.
    Each test leaves it running."""
    if _shared:
        cluster = _shared[0]
        if not cluster.running():
            cluster.start()
            cluster.wait_ready()
        return cluster
    import atexit

    from faults.pgcluster import Cluster

    cluster = Cluster()
    atexit.register(cluster.remove)
    cluster.start()
    migrate(cluster.url, tmp)
    _shared.append(cluster)
    return cluster


def tracker_env(url: str, spool: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        DATABASE_URL=url,
        SECRET_KEY="faults-secret",
        SMSTRACK_SPOOL_DIR=str(spool),
        SMSTRACK_SPOOL_SIZE_BYTES=str(4 << 20),
        SMSTRACK_SPOOL_REPLAY_SECONDS="0.3",
        SMSTRACK_PASSWORD_HASH_METHOD="pbkdf2:sha256:1",
        SMSTRACK_LINK_CACHE_TTL="600",
        # The worker's pid in the access log: see warm().
        GUNICORN_CMD_ARGS="--access-logformat '%(p)s %(s)s %(r)s'",
        **extra,
    )


def warm(master: int, url: str, log: Path, timeout: float = 30) -> None:
    """Click until every current worker has answered a 302 (its link cache
    holds the link): a worker started while the database is down cannot
    look a link up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = workers(master)
        served = {line.split()[0].strip("<>") for line in log.read_text(errors="replace").splitlines()
                  if " 302 GET " in line}
        if pids and all(str(p) in served for p in pids):
            return
        threads = [threading.Thread(target=fetch, args=(url,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    raise AssertionError(f"workers {workers(master)} did not all answer within {timeout} s")


def workers(master: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def kill_worker(master: int) -> int | None:
    """SIGKILL one of gunicorn's workers (the master starts another)."""
    pids = workers(master)
    if not pids:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pids[0], signal.SIGKILL)
    return pids[0]


def wait_workers(master: int, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while len(workers(master)) < count and time.monotonic() < deadline:
        time.sleep(0.05)


class Load:
    """Threads that click ``url`` until stopped, keeping every answer:
    the click ids of the 302s, the statuses, and connection errors (a
    request to a worker killed under it)."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url, self.count = url, threads
        self.ids: list[str] = []
        self.statuses: Counter = Counter()
        self.errors = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                reply = fetch(self.url, headers={"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)"
                                                 " AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148"
                                                 " Safari/604.1"})
            except OSError:
                self.errors += 1
                continue
            self.statuses[reply.status] += 1
            if reply.status == 302:
                self.ids.append(parse_qs(urlsplit(reply.headers["Location"]).query)["smsclid"][0])

    def __enter__(self) -> Load:
        self._stop.clear()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(self.count)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)


def stored_clicks(url: str) -> Counter:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return Counter(dict(conn.execute(text(
                "SELECT click_id, count(*) FROM smstrack_clicks GROUP BY click_id")).all()))
    finally:
        engine.dispose()


def wait_stored(url: str, ids: list[str], timeout: float = 30) -> Counter:
    deadline = time.monotonic() + timeout
    while True:
        try:
            stored = stored_clicks(url)
        except Exception:
            stored = Counter()
        if set(ids) <= set(stored) or time.monotonic() > deadline:
            return stored
        time.sleep(0.2)


__all__ = ["BIN", "FULL", "ROOT", "Load", "clean_env", "fetch", "free_port", "kill_worker", "migrate", "shared_cluster",
           "stored_clicks", "tracker_env", "wait_stored", "wait_workers", "warm", "workers"]
