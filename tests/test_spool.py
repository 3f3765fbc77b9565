"""The spool's format and layers: framed, checksummed records that survive a
torn write, group commit, the fallback directory, the memory buffer, and
replays that write each record once (SQLite and PostgreSQL)."""
from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time

import pytest
from sqlalchemy import select, text

from flask_smstrack.tracking import spool_segment, spool_store
from flask_smstrack.tracking.spool_segment import CLICK, FRAME, REPLAYED, WAITING, Segment, frame, segment_paths
from flask_smstrack.tracking.spool_store import Spool


def _payload(i: int) -> bytes:
    return json.dumps({"n": i, "pad": "x" * 40}).encode()


def _read(path: str) -> list[int]:
    segment = Segment.open(path)
    try:
        return [json.loads(r.payload)["n"] for r in segment.records()]
    finally:
        segment.close()


def test_segment_is_preallocated_and_records_read_back(tmp_path):
    spool = Spool(str(tmp_path / "spool"), fallback="", size=1 << 16)
    spool.start()
    [path] = segment_paths(str(tmp_path / "spool"))
    assert os.path.getsize(path) == 1 << 16
    assert os.stat(path).st_blocks * 512 >= 1 << 16  # allocated, not sparse
    assert [spool.put(CLICK, _payload(i)) for i in range(3)] == ["primary"] * 3
    assert _read(path) == [0, 1, 2]


def test_torn_tail_loses_only_that_record(tmp_path):
    spool = Spool(str(tmp_path), fallback="", size=1 << 16)
    for i in range(3):
        spool.put(CLICK, _payload(i))
    segment = spool.layers[0].segments[0]
    torn = frame(segment.generation, CLICK, _payload(3))
    os.pwrite(segment.fd, torn[: len(torn) // 2], segment.end)  # a kill -9 mid-write
    assert _read(segment.path) == [0, 1, 2]


def test_damaged_record_is_skipped_and_the_rest_kept(tmp_path):
    spool = Spool(str(tmp_path), fallback="", size=1 << 16)
    for i in range(4):
        spool.put(CLICK, _payload(i))
    segment = spool.layers[0].segments[0]
    second = [r for r in Segment.open(segment.path).records()][1]
    os.pwrite(segment.fd, b"#", second.offset + FRAME.size + 3)  # one byte of its payload
    reader = Segment.open(segment.path)
    assert [json.loads(r.payload)["n"] for r in reader.records()] == [0, 2, 3]
    assert reader.damaged == 1


def test_replayed_segment_starts_over(tmp_path):
    spool = Spool(str(tmp_path), fallback="", size=1 << 16)
    for i in range(3):
        spool.put(CLICK, _payload(i))
    segment = spool.layers[0].segments[0]
    for record in list(segment.records()):
        segment.mark(record.offset, REPLAYED)
    segment.reset()
    spool.put(CLICK, _payload(9))
    assert _read(segment.path) == [9]
    assert [r.state for r in Segment.open(segment.path).records()] == [WAITING]


def test_concurrent_spoolers_share_fsyncs(tmp_path, monkeypatch):
    """Group commit: 32 threads spool at once while each fsync takes 5 ms;
    every record is on disk when its put returns, in far fewer fsyncs."""
    synced = []
    real = os.fdatasync

    def slow_fdatasync(fd):
        time.sleep(0.005)
        real(fd)
        synced.append(fd)

    monkeypatch.setattr(spool_segment.os, "fdatasync", slow_fdatasync)
    spool = Spool(str(tmp_path), fallback="", size=1 << 20)
    spool.start()
    synced.clear()
    acknowledged = []

    def spooler(n):
        for i in range(n * 10, n * 10 + 10):
            spool.put(CLICK, _payload(i))
            # Acknowledged only once a sync covered it.
            assert len(synced) >= 1
            acknowledged.append(i)

    threads = [threading.Thread(target=spooler, args=(n,)) for n in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = spool.stats
    print(f"group commit: {stats['fsync_records']} records in {stats['fsync_batches']} fsyncs,"
          f" largest batch {stats['fsync_batch_max']}")
    assert sorted(_read(spool.layers[0].segments[0].path)) == sorted(acknowledged) == list(range(320))
    assert stats["fsync_batches"] == len(synced) < 320 / 3
    assert stats["fsync_batch_max"] > 4


def test_fallback_then_memory_then_lost(tmp_path, caplog):
    (tmp_path / "file").write_text("not a directory")
    primary = str(tmp_path / "file" / "spool")  # cannot be made
    fallback = tmp_path / "fallback"
    spool = Spool(primary, fallback=str(fallback), size=1 << 16, memory_records=2)
    spool.start()
    assert spool.stats["primary_errors"] == 1
    assert spool.put(CLICK, _payload(1)) == "fallback"
    assert _read(segment_paths(str(fallback))[0]) == [1]
    fallback.rename(tmp_path / "gone")
    (tmp_path / "fallback").write_text("now a file too")
    spool.layers[1].segments.clear()
    assert [spool.put(CLICK, _payload(i)) for i in (2, 3, 4)] == ["memory", "memory", "lost"]
    assert spool.counts() | {} == {
        "primary": 0, "fallback": 1, "memory": 2, "lost": 1, "replayed": 0, "rejected": 0,
        "in_memory": 2, "errors": spool.counts()["errors"],
        "fsync_batches": spool.stats["fsync_batches"], "fsync_batch_max": 1,
    }
    assert "LOST" in caplog.text and "held in memory" in caplog.text
    # The disk is back: memory goes to the spool, in order.
    os.remove(tmp_path / "fallback")
    spool.layers[1].failed_until = 0
    assert spool.drain_memory() == 2
    assert _read(segment_paths(str(fallback))[0]) == [2, 3]


def test_failed_fsync_is_not_acknowledged(tmp_path, monkeypatch):
    spool = Spool(str(tmp_path / "a"), fallback=str(tmp_path / "b"), size=1 << 16)
    spool.start()

    def failing(fd):
        if fd == spool.layers[0].segments[0].fd:
            raise OSError(5, "Input/output error")
        return real(fd)

    real = os.fdatasync
    monkeypatch.setattr(spool_segment.os, "fdatasync", failing)
    assert spool.put(CLICK, _payload(1)) == "fallback"


def test_segment_full_rolls_over(tmp_path):
    spool = Spool(str(tmp_path), fallback="", size=1 << 13)
    for i in range(300):
        assert spool.put(CLICK, _payload(i)) == "primary"
    paths = [s.path for s in spool.layers[0].segments]
    assert len(paths) > 2 and sorted(paths) == segment_paths(str(tmp_path))
    assert [n for p in paths for n in _read(p)] == list(range(300))


def test_default_fallback_is_elsewhere(tmp_path):
    path = spool_store.default_fallback_dir(str(tmp_path / "spool"))
    assert path.startswith("/dev/shm/" if os.path.isdir("/dev/shm") else "/")
    assert path != spool_store.default_fallback_dir(str(tmp_path / "other"))


# In the app: the redirect, the collector and the API, and the replays.


def _clicks(app) -> list[str]:
    from wsgi import db

    from flask_smstrack.models import Click

    with app.app_context():
        return list(db.session.execute(select(Click.click_id).order_by(Click.id)).scalars())


def _orders(app) -> list[tuple]:
    from wsgi import db

    from flask_smstrack.models import Conversion

    with app.app_context():
        return list(db.session.execute(
            select(Conversion.order_id, Conversion.trust, Conversion.click_pk.is_not(None)).order_by(Conversion.id)
        ).all())


class _TableAway:
    """A table renamed away for real, so that writes to it fail."""

    def __init__(self, app, table: str) -> None:
        self.app, self.table = app, table

    def __enter__(self):
        self._rename(self.table, f"{self.table}_away")

    def __exit__(self, *exc):
        self._rename(f"{self.table}_away", self.table)

    def _rename(self, old, new):
        from wsgi import db

        with self.app.app_context():
            with db.engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


@pytest.fixture
def live(make_app, database_url):
    return make_app(SMSTRACK_SPOOL_REPLAY_SECONDS=0.05)


def test_clicks_replayed_in_the_background_once(live, database_url):
    from conftest import Actions, click_id_of

    actions = Actions(live)
    key = actions.api_key()
    link = actions.link(key, actions.campaign(key)["id"])
    actions.click(link["code"])  # the link is cached
    with _TableAway(live, "smstrack_clicks"):
        ids = [click_id_of(actions.click(link["code"])) for _ in range(5)]
        spool = live.extensions["smstrack_spool"]
        assert spool.counts()["primary"] == 5
        time.sleep(0.3)  # replays fail meanwhile, and back off
    deadline = time.monotonic() + 10
    while not set(ids) <= set(_clicks(live)) and time.monotonic() < deadline:
        time.sleep(0.05)
    stored = _clicks(live)
    print(f"spooled {len(ids)} clicks, stored {len(set(ids) & set(stored))}")
    assert sorted(stored[1:]) == sorted(ids)
    with live.app_context():
        from flask_smstrack.tracking.spool import replay_spool, spooled_count

        assert spooled_count() == 0
        assert replay_spool() == (0, 0)
    assert spool.counts()["replayed"] == 5


def test_conversions_queued_while_the_database_is_down(make_app, database_url):
    from conftest import Actions, click_id_of

    app = make_app()
    actions = Actions(app)
    key = actions.api_key()
    link = actions.link(key, actions.campaign(key)["id"])
    clicked = click_id_of(actions.click(link["code"]))
    beacon = {"type": "conversion", "click_id": clicked, "revenue": "49.90", "currency": "USD"}
    with _TableAway(app, "smstrack_conversions"):
        replies = [
            actions.collect({**beacon, "order_id": "A-1"}),
            actions.collect({**beacon, "order_id": "A-1"}),  # a replay, deduped later
            actions.api("POST", "/conversions", key, json={"order_id": "B-1", "revenue": "10", "currency": "USD",
                                                           "click_id": clicked}),
            actions.collect({**beacon, "order_id": "C-1", "revenue": "not money"}),  # invalid: refused now
            actions.api("POST", "/conversions", key, json={"order_id": "D-1", "revenue": "-1", "currency": "USD"}),
        ]
        assert [r.status_code for r in replies] == [202, 202, 202, 400, 400]
        assert replies[0].json["status"] == "queued" and replies[2].json["queued"] is True
        assert "revenue" in replies[3].json["errors"] or "revenue" in json.dumps(replies[3].json)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["smstrack", "replay-spool"])
    assert result.exit_code == 0, result.output
    assert "2 conversions" in result.output and "1 were already stored" in result.output
    assert _orders(app) == [("A-1", "unverified", True), ("B-1", "verified", True)]
    assert runner.invoke(args=["smstrack", "replay-spool"]).output.strip() == "The spool is empty."


def test_dead_process_segment_replayed_by_one_process(make_app, tmp_path, database_url):
    """A segment whose owner died is replayed by the first process that
    locks it, and removed; a live owner's segment is left to its owner."""
    app = make_app()
    spool_dir = app.extensions["smstrack"].spool_dir
    row = {"click_id": "0" * 26, "campaign_id": 1, "link_id": 1}
    from conftest import Actions

    actions = Actions(app)
    key = actions.api_key()
    link = actions.link(key, actions.campaign(key)["id"])
    with app.app_context():
        from wsgi import db

        from flask_smstrack.models import Link

        found = db.session.execute(select(Link.id, Link.campaign_id).where(Link.code == link["code"])).one()
    from flask_smstrack.tracking.classify import Agent
    from flask_smstrack.tracking.clicks import click_row, new_click_id

    def other_process_row():
        row = click_row(new_click_id(), dt.datetime.now(dt.timezone.utc), found.id,
                        found.campaign_id, "human", Agent("human", "mobile", "iOS", "Safari"))
        return row, json.dumps(dict(row, created_at=row["created_at"].isoformat())).encode()

    alive, dead = Spool(spool_dir, fallback=""), Spool(spool_dir, fallback="")
    alive_row, payload = other_process_row()
    alive.put(CLICK, payload)
    dead_row, payload = other_process_row()
    dead.put(CLICK, payload)
    dead_path = dead.layers[0].segments[0].path
    dead.layers[0].segments[0].close()  # the process is gone: its lock with it
    with app.app_context():
        from flask_smstrack.tracking.spool import replay_spool

        assert replay_spool() == (1, 0)
    assert _clicks(app) == [dead_row["click_id"]]
    assert not os.path.exists(dead_path)
    assert os.path.exists(alive.layers[0].segments[0].path)
    assert row


def test_old_jsonl_spool_files_replayed(app, database_url):
    from conftest import Actions

    actions = Actions(app)
    key = actions.api_key()
    link = actions.link(key, actions.campaign(key)["id"])
    from wsgi import db

    from flask_smstrack.models import Link

    with app.app_context():
        found = db.session.execute(select(Link.id, Link.campaign_id).where(Link.code == link["code"])).one()
    spool_dir = app.extensions["smstrack"].spool_dir
    row = {"click_id": "LEGACY00000000000000000000", "created_at": "2026-11-30T12:00:00+00:00", "link_id": found.id,
           "campaign_id": found.campaign_id, "kind": "human", "is_first": True}
    with open(os.path.join(spool_dir, "clicks-4242.jsonl"), "w") as f:
        f.write(json.dumps(row) + "\n")
    result = app.test_cli_runner().invoke(args=["smstrack", "replay-spool"])
    assert "Wrote 1 clicks" in result.output, result.output
    assert _clicks(app) == [row["click_id"]]


def test_late_conversion_is_added_to_the_rollups(app, database_url):
    """A conversion spooled an hour ago and replayed after its campaign was
    rolled up past that hour is in the report once (the rollups are shifted,
    not rebuilt)."""
    from wsgi import db

    from conftest import Actions
    from flask_smstrack.models import Link
    from flask_smstrack.tracking.classify import Agent
    from flask_smstrack.tracking.clicks import click_row
    from flask_smstrack.tracking.spool import get_spool, replay_spool
    from flask_smstrack.tracking.spool_segment import CONVERSION

    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"])
    now = dt.datetime.now(dt.timezone.utc)
    with app.app_context():
        found = db.session.execute(select(Link.id, Link.campaign_id).where(Link.code == link["code"])).one()
        row = click_row("LATE" + "0" * 22, now - dt.timedelta(hours=2), found.id, found.campaign_id, "human",
                        Agent("human", "mobile", "iOS", "Mobile Safari"), is_first=True)
        app.extensions["smstrack"].click_writer.write(row)
    before = actions.report(key, campaign["id"])  # rolls the campaign up to about now
    assert (before["clicks"], before["conversions"]) == (1, 0)
    record = {"data": {"event": "purchase", "order_id": "LATE-1", "click_id": row["click_id"], "revenue": "49.90",
                       "currency": "USD"}, "source": "snippet", "trust": "unverified", "scope": None,
              "owner_id": None, "fallback_click_ids": [], "created_at": (now - dt.timedelta(hours=1)).isoformat()}
    with app.app_context():
        assert get_spool().put(CONVERSION, json.dumps(record).encode()) == "primary"
        assert replay_spool() == (1, 0)
        assert replay_spool() == (0, 0)
    after = actions.report(key, campaign["id"])
    assert (after["clicks"], after["conversions"], after["revenue"]) == (1, 1, {"USD": "49.90"})
