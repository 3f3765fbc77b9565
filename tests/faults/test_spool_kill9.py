"""kill -9 of gunicorn's workers under load, with the database up and then
down: every 302 a visitor received has its click stored exactly once once
the database is back (checked by click id), and no request gets a 5xx.

Phase 1: the database is up; workers are killed under load (a request in
flight on a killed worker gets a broken connection, never a 302).
Phase 2: the database (a throwaway cluster) is stopped; the workers, whose
link caches are warm, spool every click (fsync'd before the 302); then
every worker is killed, leaving its spool segment behind.
Phase 3: the database is back; the new workers find the dead workers'
segments at start and replay them in the background, each under an
exclusive flock.

Short form by default (a few seconds); ``FLASK_SMSTRACK_FAULTS=full`` runs longer
with more kills.
"""
from __future__ import annotations

import time

import pytest

from e2e.seed import Seed
from e2e.support import free_port, gunicorn
from faults.spool_support import (
    BIN,
    FULL,
    ROOT,
    Load,
    kill_worker,
    shared_cluster,
    tracker_env,
    wait_stored,
    wait_workers,
    warm,
)

pytestmark = pytest.mark.timeout(300)


def test_kill9_workers_under_load_loses_no_click(tmp_path, monkeypatch):
    up_seconds, down_seconds, kills = (6.0, 4.0, 6) if FULL else (1.5, 1.0, 2)
    pg = shared_cluster(tmp_path)
    try:
        env = tracker_env(pg.url, tmp_path / "spool")
        with Seed(env) as seed:
            seed.user("kill9@example.com", "correct horse battery", admin=True)
            _, short_url = seed.campaign_with_link("kill9@example.com", "https://shop.example/spring", "kill9spool")
        port = free_port()
        with gunicorn(BIN / "gunicorn", "wsgi:app", port=port, cwd=ROOT, env=env, log=tmp_path / "gunicorn.log",
                      workers=2, ready_path="/smstrack/t.js") as server:
            url = f"{server.url}/s/kill9spool"
            master = server.process.pid
            load = Load(url)
            # Phase 1: the database is up; kill -9 under load.
            with load:
                for _ in range(kills):
                    time.sleep(up_seconds / kills)
                    kill_worker(master)
                    wait_workers(master, 2)
            warm(master, url, tmp_path / "gunicorn.log")
            up = len(load.ids)
            # Phase 2: the database is down; clicks are spooled.
            pg.stop()
            with load:
                time.sleep(down_seconds)
            spooled = len(load.ids) - up
            for _ in range(2):
                kill_worker(master)
            # Phase 3: the database is back; the new workers replay the dead ones' spools.
            pg.start()
            pg.wait_ready()
            wait_workers(master, 2)
            with load:
                time.sleep(0.5)
            stored = wait_stored(pg.url, load.ids, timeout=60)
            log = (tmp_path / "gunicorn.log").read_text(errors="replace")
    finally:
        if not pg.running():
            pg.start()
    ids = load.ids
    duplicates = {i: n for i, n in stored.items() if n > 1}
    missing = [i for i in ids if i not in stored]
    print(f"\nkill -9 under load: {len(ids)} 302s received ({up} with the database up, {spooled} spooled while"
          f" it was down), {sum(stored[i] for i in set(ids))} of them stored, {len(missing)} missing, {len(duplicates)} stored"
          f" twice, {load.errors} broken connections (killed workers), statuses {dict(load.statuses)}")
    assert spooled > 10, "the database outage spooled nothing"
    assert not [s for s in load.statuses if s >= 500], (load.statuses, log[-3000:])
    assert set(load.statuses) == {302}
    assert len(ids) == len(set(ids))
    assert missing == [], log[-3000:]
    assert duplicates == {}
