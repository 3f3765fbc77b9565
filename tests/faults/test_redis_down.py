"""Redis stops answering under a node (two gunicorn workers) that uses it for
the shared link cache, the edits' broadcast and the rate counters: paused
(SIGSTOP: a dead host, every call waits for its timeout), then killed and
started again empty. Every click is answered and stored, an edit made
meanwhile reaches the workers within SMSTRACK_LINK_CACHE_TTL, and once
Redis is back an edit reaches them within a second again.

Short form by default; ``FLASK_SMSTRACK_FAULTS=full`` holds each fault longer.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import create_engine, func, select

from conftest import PASSWORD_HASH_METHOD, _empty_tables
from e2e.browser import BIN
from e2e.seed import Seed
from e2e.support import ROOT, clean_env, fetch, free_port, gunicorn
from faults.pgcluster import free_low_port

FULL = os.environ.get("FLASK_SMSTRACK_FAULTS") == "full"
#: Seconds each fault is held.
HOLD = 8.0 if FULL else 1.5
#: Each process's link cache, short so that an edit Redis could not carry
#: arrives by itself.
CACHE_TTL = 2


@contextlib.contextmanager
def redis_server(tmp_path) -> Iterator[dict]:
    """A throwaway redis-server on a free port, without persistence; the
    dict's ``process`` is replaced when it is started again."""
    port = free_low_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(tmp_path)]
    server = {"url": f"redis://127.0.0.1:{port}/0", "command": command}

    def start():
        with open(tmp_path / "redis.log", "ab") as log:
            server["process"] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        import redis

        client = redis.Redis.from_url(server["url"])
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    server["start"] = start
    start()
    try:
        yield server
    finally:
        process = server["process"]
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.kill()
            process.wait(10)


def _click_id(location: str) -> str:
    return parse_qs(urlsplit(location).query)["smsclid"][0]


class Load:
    """Asks the node for ``code`` from two threads; keeps (time, status,
    Location, seconds it took) of every answer."""

    def __init__(self, url: str, code: str) -> None:
        self.url, self.code, self.answers, self.errors = url, code, [], []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]

    def _run(self):
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                reply = fetch(f"{self.url}/s/{self.code}")
            except OSError as err:
                self.errors.append(repr(err))
                continue
            self.answers.append((started, reply.status, reply.headers.get("Location", ""),
                                 time.monotonic() - started))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(15)


def _edit(seed, link_id: int, destination: str) -> tuple[float, float]:
    """Edit the link as the dashboard does; when the edit began and ended."""
    from wsgi import db

    from flask_smstrack.manage import update_link
    from flask_smstrack.models import Link

    began = time.monotonic()
    with seed.app.app_context():
        update_link(db.session.get(Link, link_id), {"destination_url": destination})
    return began, time.monotonic()


def _settled(answers, destination: str, since: float, until: float = float("inf")) -> float:
    """Seconds after ``since`` from which every answer until ``until`` went to ``destination``."""
    late = [at for at, _, location, _ in answers if since <= at < until and not location.startswith(destination)]
    return (max(late) - since) if late else 0.0


def test_redirects_survive_redis_pausing_and_restarting(migrated, tmp_path):
    _empty_tables(migrated)
    with redis_server(tmp_path) as server:
        env = clean_env(
            DATABASE_URL=migrated, SECRET_KEY="redis-down-secret", SMSTRACK_REDIS_URL=server["url"],
            SMSTRACK_REDIS_PREFIX="t-redis-faults", SMSTRACK_LINK_CACHE_TTL=str(CACHE_TTL),
            SMSTRACK_RATELIMIT_REDIRECT="100000 per minute",
            SMSTRACK_SPOOL_DIR=str(tmp_path / "spool"), SMSTRACK_PASSWORD_HASH_METHOD=PASSWORD_HASH_METHOD,
        )
        with Seed(env) as seed:
            owner = seed.user("shop@example.com", "correct horse battery", admin=True)
            from flask_smstrack.manage import create_campaign, create_link

            with seed.app.app_context():
                campaign = create_campaign({"name": "Spring sale", "currency": "USD"}, owner)
                link = create_link(campaign, {"destination_url": "https://shop.example.com/a"})
                code, link_id = link.code, link.id
            with gunicorn(BIN / "gunicorn", "wsgi:app", port=free_port(), cwd=ROOT, env=env,
                          log=tmp_path / "node.log", workers=2, ready_path="/smstrack/login") as node:
                with Load(node.url, code) as load:
                    time.sleep(1.0)
                    # Paused: every Redis call waits for its timeout.
                    server["process"].send_signal(signal.SIGSTOP)
                    paused = time.monotonic()
                    time.sleep(0.3)
                    edited_paused = _edit(seed, link_id, "https://shop.example.com/b")
                    time.sleep(HOLD)
                    server["process"].send_signal(signal.SIGCONT)
                    resumed = time.monotonic()
                    time.sleep(HOLD)
                    # Killed, then started again with nothing in it.
                    server["process"].kill()
                    server["process"].wait(10)
                    edited_killed = _edit(seed, link_id, "https://shop.example.com/c")
                    time.sleep(HOLD)
                    server["start"]()
                    time.sleep(max(HOLD, 3.0))  # the subscribers reconnect (they back off up to 2 s)
                    edited_back = _edit(seed, link_id, "https://shop.example.com/d")
                    time.sleep(1.5)
                answers = load.answers

        statuses = {}
        for _, status, _, _ in answers:
            statuses[status] = statuses.get(status, 0) + 1
        ids = {_click_id(location) for _, status, location, _ in answers if status == 302}
        engine = create_engine(migrated)
        with engine.connect() as conn:
            from flask_smstrack.models import Click

            stored = conn.execute(select(func.count()).select_from(Click).where(Click.click_id.in_(list(ids)))).scalar()
        engine.dispose()
        spooled = sum(1 for _ in (tmp_path / "spool").glob("*")) if (tmp_path / "spool").exists() else 0
        during_pause = [took for at, _, _, took in answers if paused <= at < resumed]
        slow = [took for took in during_pause if took > 0.2]
        print(f"\n{len(answers)} requests: {statuses}, {len(load.errors)} socket errors; {len(ids)} click ids,"
              f" {stored} stored ({spooled} spool files)")
        print(f"while paused: {len(during_pause)} answers, {len(slow)} slower than 0.2 s,"
              f" slowest {max(during_pause, default=0) * 1000:.0f} ms")
        after_pause = _settled(answers, "https://shop.example.com/b", edited_paused[1], edited_killed[0])
        after_kill = _settled(answers, "https://shop.example.com/c", edited_killed[1], edited_back[0])
        after_back = _settled(answers, "https://shop.example.com/d", edited_back[1])
        print(f"edit while paused reached every answer after {after_pause:.2f} s (cache TTL {CACHE_TTL} s);"
              f" while killed after {after_kill:.2f} s; with Redis back after {after_back * 1000:.0f} ms")
        assert load.errors == [] and statuses == {302: len(answers)}
        assert stored + spooled >= len(ids) and stored == len(ids)
        # A paused Redis costs a click its timeout now and then, not every click.
        assert len(slow) <= max(4, len(during_pause) // 10), (len(slow), len(during_pause))
        # Carried by the cache's TTL while Redis is away, and sent again
        # within a second once it answers.
        assert after_pause <= max(CACHE_TTL, HOLD + 0.3) + 1.5
        assert after_kill <= CACHE_TTL + 1.0
        assert after_back < 1.0
