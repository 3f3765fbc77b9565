"""SQLite's write-ahead log stays under ``SMSTRACK_SQLITE_WAL_LIMIT_BYTES``
while several processes write clicks and a reader keeps transactions open,
and every click is stored once.

It runs on a SQLite file of its own, whatever database the rest of the suite
uses: the log is SQLite's.
"""
import multiprocessing
import os
import sqlite3
import threading
import time
from urllib.parse import parse_qsl, urlsplit

import pytest

from conftest import Actions, _test_config

#: A quarter of the default, so that the log passes its trigger (a quarter
#: of this) many times in the run: the clicks write about 12 MB of log a
#: second. The room between the trigger and the limit is what the clicks can
#: add while a reader pins the log and the checkpoint thread waits its turn
#: on a busy machine, as it is with the default.
LIMIT = 16 * 1024 * 1024
DESTINATION = "https://shop.example.com/spring?src=sms"
SECONDS = 6.0
PROCESSES = 3
THREADS = 2


def _config(url: str, instance: str, **extra) -> dict:
    from pathlib import Path

    return {**_test_config(url, Path(instance)), "SMSTRACK_SQLITE_WAL_LIMIT_BYTES": LIMIT, **extra}


def _clicker(args: tuple[str, str, str, float]) -> dict:
    """One worker process: clicks ``code`` from a few threads for ``seconds``
    from when its app is ready (a loaded machine may take seconds to start
    it); returns the click ids it was sent to and its checkpoint counts."""
    url, instance, code, seconds = args
    from wsgi import create_app, db

    app = create_app(_config(url, instance))
    until = time.time() + seconds
    ids: list[str] = []
    statuses: list[int] = []

    def click(n: int) -> None:
        client = app.test_client()
        ip = f"81.2.{os.getpid() % 250}.{n}"
        while time.time() < until:
            response = client.get(f"/s/{code}", headers={"User-Agent": "Mozilla/5.0 (iPhone)"},
                                  environ_base={"REMOTE_ADDR": ip})
            statuses.append(response.status_code)
            query = dict(parse_qsl(urlsplit(response.headers["Location"]).query))
            ids.append(query.pop("smstrack_cid", None) or next(v for k, v in query.items() if k != "src"))

    threads = [threading.Thread(target=click, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    guard = app.extensions["smstrack"].click_writer.checkpointer
    counts = dict(guard.counts)
    with app.app_context():
        db.engine.dispose()
    return {"ids": ids, "statuses": statuses, "counts": counts}


def _reader(path: str, stop: threading.Event, held: list[float]) -> None:
    """Keeps a read transaction open for 20, 50 or 100 ms, then lets go for
    100 ms, over and over: each one pins the log's pages while it lasts."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=10)
    n = 0
    try:
        while not stop.is_set():
            connection.execute("BEGIN")
            connection.execute("SELECT count(*) FROM smstrack_clicks").fetchone()
            pause = (0.02, 0.05, 0.1)[n % 3]
            time.sleep(pause)
            connection.execute("COMMIT")
            held.append(pause)
            n += 1
            time.sleep(0.1)
    finally:
        connection.close()


def _watch(wal: str, stop: threading.Event, sizes: list[int]) -> None:
    while not stop.is_set():
        try:
            sizes.append(os.stat(wal).st_size)
        except FileNotFoundError:
            sizes.append(0)
        time.sleep(0.002)


@pytest.fixture
def sqlite_app(tmp_path):
    from wsgi import create_app, db
    from flask_smstrack.db.migrate import upgrade

    path = tmp_path / "wal.db"
    url = "sqlite:///" + str(path)
    app = create_app(_config(url, str(tmp_path)))
    with app.app_context():
        upgrade()
    yield app, url, path
    with app.app_context():
        db.engine.dispose()


def test_the_log_stays_under_its_limit_with_readers_and_every_click_is_stored_once(sqlite_app, tmp_path):
    app, url, path = sqlite_app
    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key)
    code = actions.link(key, campaign["id"], destination_url=DESTINATION)["code"]
    wal = str(path) + "-wal"

    stop = threading.Event()
    sizes: list[int] = []
    held: list[float] = []
    watcher = threading.Thread(target=_watch, args=(wal, stop, sizes))
    reader = threading.Thread(target=_reader, args=(str(path), stop, held))
    watcher.start()
    reader.start()
    try:
        with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
            results = pool.map(_clicker, [(url, str(tmp_path), code, SECONDS)] * PROCESSES)
    finally:
        stop.set()
        watcher.join()
        reader.join()

    ids = [i for r in results for i in r["ids"]]
    statuses = [s for r in results for s in r["statuses"]]
    counts = {k: sum(r["counts"][k] for r in results) for k in ("PASSIVE", "TRUNCATE", "busy")}
    connection = sqlite3.connect(str(path))
    try:
        stored = connection.execute(
            "SELECT click_id, count(*) FROM smstrack_clicks GROUP BY click_id"
        ).fetchall()
    finally:
        connection.close()
    stored_counts = dict(stored)
    from flask_smstrack.tracking.spool import waiting_records

    spooled = waiting_records(str(tmp_path / "spool"))
    peak = max(sizes)
    print(
        f"{len(ids)} clicks from {PROCESSES} processes x {THREADS} threads in {SECONDS:.0f} s,"
        f" reader held {len(held)} transactions; WAL peak {peak / 1e6:.2f} MB"
        f" (limit {LIMIT / 1e6:.2f} MB), checkpoints {counts}"
    )

    assert set(statuses) == {302}
    assert len(ids) == len(set(ids)) > 300
    assert spooled == 0
    assert stored_counts == dict.fromkeys(ids, 1)
    assert len(held) > 20
    assert counts["TRUNCATE"] > 0
    assert peak <= LIMIT


def test_journal_size_limit_is_set_on_every_connection(sqlite_app):
    app, _, _ = sqlite_app
    from wsgi import db

    with app.app_context():
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_size_limit").scalar() == LIMIT
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


@pytest.mark.parametrize("value", [0, 1000, "64MB", True, 2.5])
def test_a_limit_that_is_not_a_whole_number_of_at_least_a_mebibyte_is_refused(make_app, value):
    with pytest.raises(RuntimeError, match=r"SMSTRACK_SQLITE_WAL_LIMIT_BYTES is .*at least 1048576"):
        make_app(SMSTRACK_SQLITE_WAL_LIMIT_BYTES=value)
