"""The click path's circuit breaker, and the link cache's stale entries."""
from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import create_engine, text

from conftest import IPHONE, Actions
from flask_smstrack.state import LinkCache
from flask_smstrack.tracking.breaker import Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_closed_breaker_lets_everything_through():
    breaker = Breaker(clock=Clock())
    assert breaker.closed and all(breaker.allow() for _ in range(3))
    breaker.success()
    assert breaker.snapshot() == {"status": "closed", "failures": 0, "opened": 0}


def test_a_failure_opens_it_for_a_growing_while_with_one_probe_at_a_time():
    clock = Clock()
    breaker = Breaker(clock=clock)
    breaker.failure(OSError("refused"))
    assert not breaker.allow()
    assert breaker.snapshot() == {"status": "open", "failures": 1, "opened": 1, "wait_s": 0.25, "retry_in_s": 0.25}
    assert breaker.retry_after() == 1
    clock.now += 0.25
    assert breaker.allow()  # the probe
    assert not breaker.allow() and not breaker.allow()  # one at a time
    assert breaker.snapshot()["status"] == "probing"
    breaker.failure()
    assert breaker.wait == 0.5 and not breaker.allow()
    waits = []
    for _ in range(8):
        clock.now = breaker.retry_at
        assert breaker.allow()
        breaker.failure()
        waits.append(breaker.wait)
    assert waits == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0]
    assert breaker.retry_after() == 10
    clock.now = breaker.retry_at
    assert breaker.allow()
    breaker.success()
    assert breaker.closed and breaker.allow() and breaker.allow()
    assert breaker.snapshot() == {"status": "closed", "failures": 0, "opened": 1}
    # The next outage starts from the shortest wait again.
    breaker.failure()
    assert breaker.wait == 0.25 and breaker.snapshot()["opened"] == 2


def test_failures_of_requests_already_under_way_do_not_lengthen_the_wait():
    clock = Clock()
    breaker = Breaker(clock=clock)
    for _ in range(10):  # ten threads that were all writing when it broke
        breaker.failure()
    assert breaker.wait == 0.25 and breaker.failures == 10


def test_a_probe_that_never_reports_does_not_keep_the_breaker_shut():
    clock = Clock()
    breaker = Breaker(probe_timeout=2.0, clock=clock)
    breaker.failure()
    clock.now += 0.25
    assert breaker.allow()
    clock.now += 1.0
    assert not breaker.allow()
    clock.now += 1.0
    assert breaker.allow()


def test_only_one_of_many_threads_becomes_the_probe():
    clock = Clock()
    breaker = Breaker(clock=clock)
    breaker.failure()
    clock.now += 1
    barrier = threading.Barrier(16)
    allowed = []

    def ask() -> None:
        barrier.wait()
        allowed.append(breaker.allow())

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert allowed.count(True) == 1


def test_expired_links_stay_as_stale_entries():
    cache = LinkCache(maxsize=3, ttl=0)
    cache.put("a", 1)
    assert cache.get("a") is None  # expired at once
    assert cache.stale("a") == 1  # but kept
    assert cache.stale("b") is None


def test_the_cache_holds_at_most_maxsize_entries_fresh_or_stale():
    cache = LinkCache(maxsize=3, ttl=60)
    for code in "abcd":
        cache.put(code, code.upper())
    assert len(cache) == 3 and cache.stale("a") is None and cache.get("d") == "D"
    cache.put("b", "B2")  # refreshed: now the newest
    cache.put("e", "E")
    assert cache.stale("c") is None and cache.get("b") == "B2"
    cache.discard("b")
    assert cache.stale("b") is None


# -- the redirect while the database cannot be read ------------------------------


def _unreachable(state) -> None:
    """Point the hot path at a database that cannot be opened. The click
    writer's connection, on which links are also looked up, is closed and
    reopened from there."""
    state.hot.engine = create_engine("sqlite:////nonexistent-smstrack-dir/none.db")
    state.click_writer.close()
    state.click_writer.source = state.hot.engine


def _spooled(app) -> list[dict]:
    """The clicks waiting in the app's spool segments."""
    from flask_smstrack.tracking.spool_segment import CLICK, WAITING, Segment, segment_paths

    rows = []
    for path in segment_paths(app.extensions["smstrack"].spool_dir):
        segment = Segment.open(path)
        try:
            rows += [json.loads(r.payload) for r in segment.records() if r.kind == CLICK and r.state == WAITING]
        finally:
            segment.close()
    return rows


def test_a_known_link_is_served_stale_and_its_click_spooled_while_the_database_is_down(make_app):
    app = make_app(SMSTRACK_LINK_CACHE_TTL=0)
    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key)
    code = actions.link(key, campaign["id"])["code"]
    assert actions.click(code).status_code == 302  # cached (and expired at once)
    state = app.extensions["smstrack"]
    _unreachable(state)

    response = actions.click(code)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("https://shop.example.com/spring?src=sms&smsclid=")
    click_id = response.headers["Location"].rsplit("=", 1)[1]
    assert [row["click_id"] for row in _spooled(app)] == [click_id]
    assert not state.hot.breaker.closed
    health = actions.client.get("/smstrack/healthz").json["checks"]["breaker"]
    assert health["status"] == "open" and health["failures"] == 1

    # Straight to the spool while the breaker is open: no connection tried.
    assert actions.click(code).status_code == 302
    assert len(_spooled(app)) == 2 and state.hot.breaker.failures == 1


def test_a_link_never_seen_answers_503_with_retry_after_while_the_database_is_down(make_app):
    app = make_app()
    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key)
    code = actions.link(key, campaign["id"])["code"]
    _unreachable(app.extensions["smstrack"])
    response = actions.click(code)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.headers["Cache-Control"] == "no-store"
    assert "please try again in a few seconds" in response.get_data(as_text=True)
    assert _spooled(app) == []


def test_a_link_never_seen_goes_to_the_fallback_while_the_database_is_down(make_app):
    app = make_app(SMSTRACK_FALLBACK_URL="https://shop.example.com/")
    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key)
    code = actions.link(key, campaign["id"])["code"]
    app.extensions["smstrack"].hot.breaker.failure()
    response = actions.click(code)
    assert response.status_code == 302
    assert response.headers["Location"] == "https://shop.example.com/"


def test_the_link_is_read_again_once_the_database_is_back(make_app):
    app = make_app(SMSTRACK_LINK_CACHE_TTL=0)
    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"])
    assert actions.click(link["code"]).status_code == 302
    state = app.extensions["smstrack"]
    engine = state.hot.engine
    _unreachable(state)
    assert actions.click(link["code"]).status_code == 302
    state.hot.engine = state.click_writer.source = engine
    state.hot.breaker.retry_at = 1.0  # the wait is over: the next click probes
    response = actions.click(link["code"])
    assert response.status_code == 302 and state.hot.breaker.closed
    assert actions.report(key, campaign["id"])["clicks"] == 2  # one spooled, not yet replayed


@pytest.mark.parametrize("value", ["0.5s", 0, -1, 120, True])
def test_timeouts_must_be_positive_seconds(make_app, value):
    with pytest.raises(RuntimeError, match="SMSTRACK_DB_STATEMENT_TIMEOUT is .* a number of seconds"):
        make_app(SMSTRACK_DB_STATEMENT_TIMEOUT=value)


def test_a_click_after_the_server_dropped_the_writers_connection_is_stored_not_spooled(database_url, make_app):
    """PostgreSQL: the writer's connection is cut by the server (as by a
    restart); the next click is written on a new one, on the first try."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a server that drops connections: set FLASK_SMSTRACK_TEST_DATABASE_URL")
    app = make_app()
    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key)
    code = actions.link(key, campaign["id"])["code"]
    assert actions.click(code).status_code == 302
    writer = app.extensions["smstrack"].click_writer
    pid = writer._connection().info.backend_pid
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    admin.dispose()
    assert actions.click(code, ua=IPHONE).status_code == 302
    assert _spooled(app) == []
    assert app.extensions["smstrack"].hot.breaker.closed
    assert actions.report(key, campaign["id"])["clicks"] == 2


def test_statements_on_the_click_path_have_the_short_timeout(database_url, make_app):
    if not database_url.startswith("postgresql"):
        pytest.skip("statement_timeout is PostgreSQL's: set FLASK_SMSTRACK_TEST_DATABASE_URL")
    app = make_app(SMSTRACK_DB_STATEMENT_TIMEOUT=0.25)
    state = app.extensions["smstrack"]
    assert state.hot.run(lambda conn: conn.exec_driver_sql("SHOW statement_timeout").scalar()) == "250ms"
    with app.app_context(), state.db.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "0"
    from flask_smstrack.tracking.hotdb import DatabaseUnavailable

    with pytest.raises(DatabaseUnavailable):
        state.hot.run(lambda conn: conn.exec_driver_sql("SELECT pg_sleep(1)").scalar())
    assert not state.hot.breaker.closed
