"""What the outage tests share: a throwaway PostgreSQL cluster with the
schema and a campaign's links, the app under real gunicorn, clients that
click from a few threads and time every answer, and the count of what was
stored, by click id.

gunicorn runs ONE worker with several threads, so that "a known link" is
well defined: a link that this one process has served before the fault
(its cache holds it, fresh or expired). Links never served answer 503 (or
the fallback) while the database is down.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy import create_engine, text

from conftest import PASSWORD_HASH_METHOD, Actions
from e2e.browser import BIN
from e2e.support import ROOT, clean_env, fetch, free_port, gunicorn
from faults.pgcluster import Cluster, cluster

FULL = os.environ.get("FLASK_SMSTRACK_FAULTS") == "full"
#: The hot path's timeouts (the product's defaults), and what a request may
#: take on top of both on this shared, busy machine.
CONNECT_TIMEOUT = 0.5
STATEMENT_TIMEOUT = 0.5
MARGIN = 1.5
THREADS = 4
#: Seconds each client thread waits between clicks: about 40 clicks a
#: second in all, so that the replay afterwards stays short.
PAUSE = 0.1
SECRET = "outage-test-secret"


@dataclass
class Site:
    """The cluster, a campaign with links, an API key and the env of the app."""

    cluster: Cluster
    env: dict[str, str]
    key: str
    campaign_id: int
    codes: list[str]
    spool: Path


@contextlib.contextmanager
def site(tmp_path: Path, links: int = 6) -> Iterator[Site]:
    """A started cluster with the schema, one campaign and ``links`` links."""
    from flask_smstrack.db.migrate import upgrade

    with cluster() as c:
        spool = tmp_path / "spool"
        config = {"TESTING": True, "SECRET_KEY": SECRET, "SQLALCHEMY_DATABASE_URI": c.url,
                  "SMSTRACK_SPOOL_DIR": str(spool), "SMSTRACK_PASSWORD_HASH_METHOD": PASSWORD_HASH_METHOD,
                  "SMSTRACK_QUIET_HOURS": None}
        from wsgi import create_app, db

        app = create_app(config)
        with app.app_context():
            upgrade()
        actions = Actions(app)
        key = actions.api_key("owner@example.com", admin=True)
        campaign = actions.campaign(key)
        codes = [actions.link(key, campaign["id"])["code"] for _ in range(links)]
        with app.app_context():
            db.engine.dispose()
        env = clean_env(
            DATABASE_URL=c.url,
            SECRET_KEY=SECRET,
            SMSTRACK_SPOOL_DIR=str(spool),
            SMSTRACK_PASSWORD_HASH_METHOD=PASSWORD_HASH_METHOD,
            # Cached links expire during the fault: they are served stale.
            SMSTRACK_LINK_CACHE_TTL="1",
            SMSTRACK_DB_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT),
            SMSTRACK_DB_STATEMENT_TIMEOUT=str(STATEMENT_TIMEOUT),
            # One process, several threads: see the module's docstring.
            GUNICORN_CMD_ARGS=f"--threads {THREADS * 2}",
        )
        yield Site(c, env, key, campaign["id"], codes, spool)


@contextlib.contextmanager
def server(site_: Site, tmp_path: Path, **env: str):
    """gunicorn on the site, with ``env`` over the site's environment."""
    with gunicorn(BIN / "gunicorn", "wsgi:app", port=free_port(), cwd=ROOT, env={**site_.env, **env},
                  log=tmp_path / "gunicorn.log", workers=1, ready_path="/smstrack/login") as s:
        yield s


@dataclass
class Load:
    """Clicks on known links from a few threads, each answer timed."""

    url: str
    codes: list[str]
    statuses: list[int] = field(default_factory=list)
    click_ids: list[str] = field(default_factory=list)
    slowest: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _click(self, n: int) -> None:
        i = n
        while not self._stop.is_set():
            code = self.codes[i % len(self.codes)]
            i += 1
            self._stop.wait(PAUSE)
            start = time.monotonic()
            try:
                reply = fetch(f"{self.url}/s/{code}", headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
            except OSError as err:
                self.errors.append(f"{type(err).__name__}: {err}")
                continue
            took = time.monotonic() - start
            self.slowest = max(self.slowest, took)
            self.latencies.append(took)
            self.statuses.append(reply.status)
            if reply.status == 302:
                query = dict(parse_qsl(urlsplit(reply.headers["Location"]).query))
                self.click_ids.append(query["smsclid"])

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._click, args=(n,)) for n in range(THREADS)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)


def spooled(spool: Path) -> int:
    """Records waiting in the spool's files."""
    from flask_smstrack.tracking.spool import waiting_records

    return waiting_records(str(spool)) if spool.exists() else 0


def stored_counts(url: str, click_ids: list[str]) -> dict[str, int]:
    """How many rows each click id has in the clicks table."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT click_id, count(*) FROM smstrack_clicks GROUP BY click_id")).all()
    finally:
        engine.dispose()
    wanted = set(click_ids)
    return {click_id: n for click_id, n in rows if click_id in wanted}


def replay(site_: Site, timeout: float = 60.0) -> str:
    """Wait for the server's own background replay to empty the spool (no
    operator runs anything after the fault)."""
    start = time.monotonic()
    while (waiting := spooled(site_.spool)) and time.monotonic() - start < timeout:
        time.sleep(0.2)
    return f"spool emptied by the background replay in {time.monotonic() - start:.1f} s ({waiting} left)"


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


def check_and_print(name: str, site_: Site, load: Load, spooled_before: int, log: Path) -> None:
    """Every 302 stored exactly once, no 5xx, none slower than the timeouts
    and the margin; the counts printed."""
    counts = stored_counts(site_.cluster.url, load.click_ids)
    stored_once = sum(1 for n in counts.values() if n == 1)
    fivexx = sum(1 for s in load.statuses if s >= 500)
    print(f"\n{name}: sent {len(load.statuses) + len(load.errors)}, 302 {load.statuses.count(302)},"
          f" stored {stored_once}, spooled {spooled_before}, 5xx {fivexx}, connection errors {len(load.errors)},"
          f" slowest {load.slowest * 1000:.0f} ms, p99 {_p99(load.latencies) * 1000:.0f} ms")
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    assert load.errors == [], (load.errors[:5], tail)
    assert fivexx == 0, ({s: load.statuses.count(s) for s in set(load.statuses)}, tail)
    assert set(load.statuses) == {302}
    assert len(set(load.click_ids)) == len(load.click_ids)
    missing = [c for c in load.click_ids if c not in counts]
    assert missing == [], f"{len(missing)} redirected clicks not stored, e.g. {missing[:3]}"
    assert all(n == 1 for n in counts.values()), {c: n for c, n in counts.items() if n != 1}
    assert load.slowest < CONNECT_TIMEOUT + STATEMENT_TIMEOUT + MARGIN, f"slowest {load.slowest:.2f} s"
