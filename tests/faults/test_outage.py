"""PostgreSQL stopped, hung and restarted under load, with real gunicorn.

gunicorn runs one worker with several threads (see ``outage.py``): the
links the load clicks are known to that worker before the fault, and they
must keep redirecting (302, never a 5xx, never slower than the hot path's
timeouts and a margin) while the database is away. After the fault,
the servers replay their spool by themselves, and every click
id a visitor was redirected with is stored exactly once.

Short forms by default (a 6 s stop, a 3 s hang); ``FLASK_SMSTRACK_FAULTS=full``
(``make faults``) runs a 45 s stop and a 10 s hang.
"""
from __future__ import annotations

import time

import pytest

from e2e.support import fetch
from faults.outage import (
    CONNECT_TIMEOUT,
    FULL,
    MARGIN,
    STATEMENT_TIMEOUT,
    Load,
    check_and_print,
    replay,
    server,
    site,
    spooled,
)

STOP_SECONDS = 45.0 if FULL else 6.0
HANG_SECONDS = 10.0 if FULL else 3.0


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """One cluster for the module's tests, each with its own gunicorn: the
    links one test's worker served are unknown to the next one's."""
    with site(tmp_path_factory.mktemp("outage"), links=8) as s:
        yield s


def _warm(url: str, codes: list[str]) -> None:
    """Serve each known link once, with the database up."""
    for code in codes:
        assert fetch(f"{url}/s/{code}").status == 302


def _never_seen(url: str, code: str) -> None:
    """A link this worker never served, while the database is away: a 503
    page saying to try again, with Retry-After; never a 500."""
    reply = fetch(f"{url}/s/{code}")
    assert reply.status == 503, (reply.status, reply.body[:300])
    assert int(reply.headers["Retry-After"]) >= 1
    assert b"try again" in reply.body


def test_postgresql_stopped_under_load(shop, tmp_path):
    s = shop
    with server(s, tmp_path) as srv:
        known, unseen = s.codes[:4], s.codes[-1]
        _warm(srv.url, known)
        with Load(srv.url, known) as load:
            time.sleep(1.0)
            s.cluster.stop("fast")
            time.sleep(STOP_SECONDS / 2)
            _never_seen(srv.url, unseen)
            health = fetch(f"{srv.url}/smstrack/healthz").json()
            time.sleep(STOP_SECONDS / 2)
            s.cluster.start()
            time.sleep(2.0)
        assert health["checks"]["breaker"]["status"] in ("open", "probing"), health
        before = spooled(s.spool)
        assert before > 0
        print(replay(s))
        assert spooled(s.spool) == 0
        check_and_print(f"PostgreSQL stopped {STOP_SECONDS:g} s", s, load, before, srv.log)


def test_postgresql_hung_under_load(shop, tmp_path):
    s = shop
    with server(s, tmp_path) as srv:
        known, unseen = s.codes[:4], s.codes[-1]
        _warm(srv.url, known)
        with Load(srv.url, known) as load:
            time.sleep(1.0)
            s.cluster.pause()
            try:
                time.sleep(HANG_SECONDS / 2)
                _never_seen(srv.url, unseen)
                time.sleep(HANG_SECONDS / 2)
            finally:
                s.cluster.resume()
            time.sleep(2.0)
        before = spooled(s.spool)
        print(replay(s))
        check_and_print(f"PostgreSQL hung (SIGSTOP) {HANG_SECONDS:g} s", s, load, before, srv.log)


def _login(url: str) -> str:
    """Log in to the dashboard as a person does; return the Cookie header."""
    import re
    from urllib.parse import urlencode

    page = fetch(f"{url}/smstrack/login")
    cookie = page.headers["Set-Cookie"].split(";")[0]
    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.body).group(1).decode()
    reply = fetch(f"{url}/smstrack/login", method="POST",
                  headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
                  body=urlencode({"csrf_token": token, "email": "owner@example.com",
                                  "password": "correct horse"}).encode())
    assert reply.status == 302, (reply.status, reply.body[:300])
    return reply.headers["Set-Cookie"].split(";")[0]


def test_no_500_after_postgresql_restarts(shop, tmp_path):
    """Every pool and writer connection is stale after a restart: the
    redirect (cached and new links), the collector, the dashboard and the
    API still answer normally, on the first try."""
    s = shop
    # Timeouts a loaded test machine always meets: this test is about stale
    # connections, not slow ones (a slow first connect would open the
    # breaker, and a link never seen would rightly get a 503).
    with server(s, tmp_path, SMSTRACK_DB_CONNECT_TIMEOUT="5", SMSTRACK_DB_STATEMENT_TIMEOUT="5") as srv:
        cookie = _login(srv.url)
        api = {"Authorization": f"Bearer {s.key}"}

        def everything(new_code: str) -> dict[str, int]:
            redirect = fetch(f"{srv.url}/s/{s.codes[0]}")
            click_id = redirect.headers["Location"].rsplit("smsclid=", 1)[-1]
            return {
                "redirect (cached)": redirect.status,
                "redirect (new link)": fetch(f"{srv.url}/s/{new_code}").status,
                "collector": fetch(f"{srv.url}/smstrack/collect", method="POST",
                                   headers={"Content-Type": "text/plain"},
                                   body=f'{{"type": "landing", "click_id": "{click_id}"}}'.encode()).status,
                "dashboard": fetch(f"{srv.url}/smstrack/", headers={"Cookie": cookie}).status,
                "campaign page": fetch(f"{srv.url}/smstrack/campaigns/{s.campaign_id}",
                                       headers={"Cookie": cookie}).status,
                "API report": fetch(f"{srv.url}/smstrack/api/v1/campaigns/{s.campaign_id}/report",
                                    headers=api).status,
            }

        before = everything(s.codes[1])
        assert before == {"redirect (cached)": 302, "redirect (new link)": 302, "collector": 202,
                          "dashboard": 200, "campaign page": 200, "API report": 200}, before
        s.cluster.stop("fast")
        s.cluster.start()
        s.cluster.wait_ready()
        after = [everything(code) for code in s.codes[2:5]]
        print(f"\nafter a restart: {after[0]}")
        assert after == [before] * 3, after
        assert spooled(s.spool) == 0


def test_the_connect_timeout_holds_below_libpqs_two_second_floor(shop):
    """A hung server: a new hot-path connection gives up after
    SMSTRACK_DB_CONNECT_TIMEOUT (0.5 s), where libpq and psycopg wait 2 s at
    least; a statement on an open connection is cut after the statement
    timeout and its grace."""
    from sqlalchemy import create_engine, text

    from flask_smstrack.tracking.hotdb import HotPath

    app_engine = create_engine(shop.cluster.url)
    hot = HotPath(app_engine, connect_timeout=CONNECT_TIMEOUT, statement_timeout=STATEMENT_TIMEOUT)
    try:
        conn = hot.engine.connect()
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "500ms"
        shop.cluster.pause()
        try:
            start = time.monotonic()
            with pytest.raises(Exception, match="server closed the connection|consuming input failed"):
                conn.execute(text("SELECT 1"))
            cut = time.monotonic() - start
            conn.close()
            tries = []
            for _ in range(3):
                start = time.monotonic()
                with pytest.raises(Exception, match="could not connect to the database within 0.5 s"):
                    hot.engine.connect()
                tries.append(time.monotonic() - start)
        finally:
            shop.cluster.resume()
        print(f"\nhung server: statement cut after {cut * 1000:.0f} ms;"
              f" connect given up after {', '.join(f'{t * 1000:.0f}' for t in tries)} ms")
        assert cut < STATEMENT_TIMEOUT + 0.1 + MARGIN
        assert max(tries) < CONNECT_TIMEOUT + MARGIN and max(tries) < 2.0
        with hot.engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        app_engine.dispose()
