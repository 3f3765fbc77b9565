"""Group commit on PostgreSQL: clicks written at once by many threads of one
process share transactions, every click is stored once, and a click the
database refuses fails alone."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from conftest import Actions
from flask_smstrack.models import Click, Link
from flask_smstrack.tracking.classify import Agent
from flask_smstrack.tracking.clicks import click_row
from flask_smstrack.tracking.hotdb import is_integrity_error

THREADS = 12
EACH = 25


@pytest.fixture
def setup(app, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("group commit is for server databases: set FLASK_SMSTRACK_TEST_DATABASE_URL")
    from wsgi import db

    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"])
    with app.app_context():
        found = db.session.execute(select(Link.id, Link.campaign_id).where(Link.code == link["code"])).one()
    return app, found


def _row(found, click_id: str):
    return click_row(click_id, dt.datetime.now(dt.timezone.utc), found.id, found.campaign_id, "human",
                     Agent("human", "mobile", "iOS", "Mobile Safari"), is_first=False)


def _stored(app) -> list[str]:
    from wsgi import db

    with app.app_context():
        ids = db.session.execute(select(Click.click_id)).scalars().all()
        db.session.commit()
    return ids


def _hammer(writer, rows_per_thread: list[list[dict]]) -> dict[str, str]:
    """Each thread writes its rows; click id -> "ok" or the error's name."""
    outcome: dict[str, str] = {}
    start = threading.Barrier(len(rows_per_thread))

    def run(rows):
        start.wait()
        for row in rows:
            try:
                writer.write(row)
                outcome[row["click_id"]] = "ok"
            except Exception as err:  # noqa: BLE001 - counted below
                outcome[row["click_id"]] = "refused" if is_integrity_error(err) else type(err).__name__

    threads = [threading.Thread(target=run, args=(rows,)) for rows in rows_per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcome


def test_threads_share_transactions_and_each_click_is_stored_once(setup):
    app, found = setup
    writer = app.extensions["smstrack"].click_writer
    group = writer.group
    assert group is not None
    before = (group.transactions, group.rows)
    rows = [[_row(found, f"G{t:02d}{n:03d}".ljust(26, "0")) for n in range(EACH)] for t in range(THREADS)]
    outcome = _hammer(writer, rows)
    transactions, written = group.transactions - before[0], group.rows - before[1]
    stored = _stored(app)
    print(f"\n{THREADS} threads x {EACH} clicks: {written} rows in {transactions} transactions,"
          f" {len(stored)} stored, {len(set(stored))} distinct")
    assert set(outcome.values()) == {"ok"} and len(outcome) == THREADS * EACH
    assert sorted(stored) == sorted(r["click_id"] for each in rows for r in each)
    assert written == THREADS * EACH
    assert transactions < written  # some clicks shared a transaction


@pytest.mark.parametrize("pipelined", [True, False])
def test_a_refused_click_fails_alone(setup, monkeypatch, pipelined):
    """A click id already stored makes its transaction fail: the others in it
    are written again one by one, and only the duplicate is refused (with the
    transaction's statements sent together, as libpq 14 allows, or one by
    one)."""
    app, found = setup
    writer = app.extensions["smstrack"].click_writer
    assert writer._pipelined is True  # psycopg's wheels bring a recent libpq
    monkeypatch.setattr(writer, "_pipelined", pipelined)
    taken = _row(found, "TAKEN".ljust(26, "0"))
    writer.write(taken)
    rows = [[_row(found, f"R{t:02d}{n:03d}".ljust(26, "0")) for n in range(EACH)] for t in range(THREADS)]
    # Every thread tries the taken click id in the middle of its rows.
    for each in rows:
        each.insert(EACH // 2, dict(taken))
    outcome = _hammer(writer, rows)
    stored = _stored(app)
    fresh = [r["click_id"] for each in rows for r in each if r["click_id"] != taken["click_id"]]
    refused = sum(1 for each in rows for r in each if r["click_id"] == taken["click_id"])
    print(f"\n{len(fresh)} new clicks and {refused} tries of a stored click id: {len(stored)} rows stored")
    assert outcome[taken["click_id"]] == "refused"
    assert all(outcome[c] == "ok" for c in fresh)
    assert sorted(stored) == sorted([*fresh, taken["click_id"]])


def test_clicks_queued_behind_a_failing_transaction_fail_with_it():
    """While one transaction waits out a hung database, the clicks that queue
    behind it fail as soon as it does (to be spooled), not one timeout later
    each. Runs the group itself, with a database that hangs 0.3 s and fails."""
    import time

    from flask_smstrack.tracking.groupcommit import GroupCommit

    class Hung(Exception):
        pass

    def hung(*_args):
        time.sleep(0.3)
        raise Hung("statement timeout")

    group = GroupCommit(hung, hung, lambda err: False)
    took: dict[int, float] = {}
    errors: dict[int, str] = {}

    def click(n: int) -> None:
        started = time.monotonic()
        try:
            group.write("INSERT", {"n": n})
        except Hung as err:
            errors[n] = str(err)
        took[n] = time.monotonic() - started

    first = threading.Thread(target=click, args=(0,))
    first.start()
    time.sleep(0.05)  # the first is waiting on the database
    others = [threading.Thread(target=click, args=(n,)) for n in range(1, 9)]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join(5)
    print(f"\nslowest click {max(took.values()) * 1000:.0f} ms, transactions {group.transactions}")
    assert len(errors) == 9
    assert group.transactions == 1
    assert max(took.values()) < 0.55  # one timeout, not two
