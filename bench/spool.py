"""What the spool costs: records per second and fsync batch sizes of the
spool (preallocated segment, group commit, fdatasync) against the old
JSON-lines append (no fsync), alone and through the redirect while the
click writer fails.

    .venv/bin/python bench/spool.py [--seconds 3] [--dir /tmp]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

ROW = {"click_id": "0" * 26, "created_at": dt.datetime.now(dt.timezone.utc), "link_id": 1, "campaign_id": 1,
       "recipient_id": None, "variant_id": None, "kind": "human", "bot_reason": None, "source": None,
       "is_first": True, "human_confirmed": False, "visitor_id": None, "device_type": "mobile", "os": "iOS",
       "browser": "Mobile Safari", "country": "GB", "ip": None, "referrer_host": None}


def old_spool_click(spool_dir: str, row: dict) -> None:
    """The spool before: one JSON line appended, no fsync."""
    os.makedirs(spool_dir, exist_ok=True)
    line = json.dumps(dict(row, created_at=row["created_at"].isoformat())) + "\n"
    with open(os.path.join(spool_dir, f"clicks-{os.getpid()}.jsonl"), "a", encoding="utf-8") as f:
        f.write(line)


def run(threads: int, seconds: float, work) -> int:
    done = [0] * threads
    stop = time.monotonic() + seconds

    def loop(n: int) -> None:
        while time.monotonic() < stop:
            work()
            done[n] += 1

    workers = [threading.Thread(target=loop, args=(n,)) for n in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return sum(done)


def raw(base: str, seconds: float) -> None:
    from flask_smstrack.tracking.spool_segment import CLICK
    from flask_smstrack.tracking.spool_store import Spool

    payload = json.dumps(dict(ROW, created_at=ROW["created_at"].isoformat())).encode()
    print(f"spool writes alone ({seconds:g} s each, in {base}):")
    for threads in (1, 8, 32):
        old_dir = tempfile.mkdtemp(dir=base)
        old = run(threads, seconds, lambda: old_spool_click(old_dir, ROW))
        spool = Spool(tempfile.mkdtemp(dir=base), fallback="", size=256 << 20)
        spool.start()
        new = run(threads, seconds, lambda: spool.put(CLICK, payload))
        s = spool.stats
        print(f"  {threads:2d} threads: old append {old / seconds:8.0f}/s, spool {new / seconds:7.0f}/s"
              f" ({s['fsync_batches'] / seconds:.0f} fsyncs/s, mean batch {s['fsync_records'] / max(1, s['fsync_batches']):.1f},"
              f" largest {s['fsync_batch_max']})")


def redirect(base: str, seconds: float) -> None:
    from wsgi import create_app, db

    from conftest import Actions
    from flask_smstrack.db.migrate import upgrade
    from flask_smstrack.tracking import clicks

    instance = Path(tempfile.mkdtemp(dir=base))
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance}/bench.db", "SECRET_KEY": "bench",
                      "TESTING": True, "SMSTRACK_SPOOL_DIR": str(instance / "spool"),
                      "SMSTRACK_SPOOL_REPLAY_SECONDS": 0, "SMSTRACK_RATELIMIT_ENABLED": False,
                      "SMSTRACK_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1"})
    with app.app_context():
        upgrade()
    actions = Actions(app)
    key = actions.api_key()
    code = actions.link(key, actions.campaign(key)["id"])["code"]
    actions.click(code)

    class Down:
        def write(self, row):
            raise RuntimeError("database down")

    app.extensions["smstrack"].click_writer = Down()
    new_spool = clicks.spool_click
    print(f"redirect with the click writer failing ({seconds:g} s each):")
    for threads in (1, 8):
        results = {}
        for name, spool_click in (("old append", old_spool_click), ("spool", new_spool)):
            clicks.spool_click = spool_click
            local = threading.local()

            def click():
                client = getattr(local, "client", None) or setattr(local, "client", app.test_client()) or local.client
                assert client.get(f"/s/{code}", headers={"User-Agent": "Mozilla/5.0 (iPhone)"}).status_code == 302

            results[name] = run(threads, seconds, click) / seconds
        stats = app.extensions["smstrack_spool"].stats
        print(f"  {threads:2d} threads: old append {results['old append']:6.0f} clicks/s, spool"
              f" {results['spool']:6.0f} clicks/s ({results['spool'] / results['old append']:.0%});"
              f" fsync batches so far: mean {stats['fsync_records'] / max(1, stats['fsync_batches']):.1f},"
              f" largest {stats['fsync_batch_max']}")
    clicks.spool_click = new_spool
    with app.app_context():
        db.engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    import logging

    # Every spooled click logs its failure with a traceback: that is the
    # same for both, and would be most of what is measured.
    logging.getLogger("flask_smstrack").disabled = True
    base = tempfile.mkdtemp(prefix="smstrack-spool-bench-", dir=args.dir)
    raw(base, args.seconds)
    redirect(base, args.seconds)
    import shutil

    shutil.rmtree(base, ignore_errors=True)
