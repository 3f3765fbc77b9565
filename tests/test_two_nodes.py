"""Two nodes behind one load balancer: two gunicorn servers (two workers
each) on one database and one Redis. A link made on A is served by B at
once; an edit on A reaches every worker of B within a second; a dashboard
session from A works on B; rate limits count across both.

Runs on PostgreSQL, and on SQLite with both nodes on one file (one machine).
"""
from __future__ import annotations

import json
import re
import threading
import time
import uuid
from urllib.parse import urlencode

import pytest

from conftest import PASSWORD_HASH_METHOD, REDIS_URL, _empty_tables, redis_or_fail
from e2e.browser import BIN
from e2e.seed import Seed
from e2e.support import ROOT, clean_env, fetch, free_port, gunicorn

_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
API = "/smstrack/api/v1"
#: API requests one key may make per minute, counted across both nodes.
API_LIMIT = 40


@pytest.fixture
def prefix():
    client = redis_or_fail()
    name = f"t-redis-{uuid.uuid4().hex[:10]}"
    yield name
    keys = list(client.scan_iter(match=f"{name}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def _api(server, key, method, path, body=None):
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return fetch(server.url + API + path, method=method, headers=headers,
                 body=json.dumps(body).encode() if body is not None else None)


def _cookies(reply, jar: dict) -> dict:
    for header in reply.headers.get_all("Set-Cookie") or ():
        name, _, value = header.split(";", 1)[0].partition("=")
        jar[name] = value
    return jar


def _cookie_header(jar: dict) -> dict:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}


def _hammer(url: str, code: str, stop: threading.Event, out: list, threads: int = 4) -> list[threading.Thread]:
    """Ask ``url`` for ``code`` from ``threads`` threads until ``stop``; each
    answer goes to ``out`` as (request number, time it arrived, Location)."""
    counter = iter(range(10**9))

    def run():
        while not stop.is_set():
            n = next(counter)
            reply = fetch(f"{url}/s/{code}?{urlencode({'n': n})}")
            out.append((n, time.monotonic(), reply.headers.get("Location", "")))

    workers = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for thread in workers:
        thread.start()
    return workers


def _pids(log_path) -> dict[int, int]:
    """Request number -> pid of the worker that answered it, from B's access log."""
    found = {}
    for line in log_path.read_text(errors="replace").splitlines():
        match = re.match(r"pid=<?(\d+)>? n=(\d+)$", line.strip())
        if match:
            found[int(match.group(2))] = int(match.group(1))
    return found


def test_two_nodes_share_links_edits_sessions_and_limits(migrated, tmp_path, prefix):
    _empty_tables(migrated)
    env = clean_env(
        DATABASE_URL=migrated,
        SECRET_KEY="two-nodes-shared-secret",
        SMSTRACK_REDIS_URL=REDIS_URL,
        SMSTRACK_REDIS_PREFIX=prefix,
        SMSTRACK_RATELIMIT_KEY_PREFIX=prefix,
        SMSTRACK_RATELIMIT_API=f"{API_LIMIT} per minute",
        SMSTRACK_SPOOL_DIR=str(tmp_path / "spool"),
        SMSTRACK_PASSWORD_HASH_METHOD=PASSWORD_HASH_METHOD,
    )
    with Seed(env) as seed:
        key = seed.user_with_key("shop@example.com")
    # B's access log names the worker (pid) that answered each request.
    env_b = {**env, "GUNICORN_CMD_ARGS": "--access-logformat 'pid=%(p)s %(q)s'"}
    log_b = tmp_path / "b.log"
    with gunicorn(BIN / "gunicorn", "wsgi:app", port=free_port(), cwd=ROOT, env=env, log=tmp_path / "a.log",
                  workers=2, ready_path="/smstrack/login") as a, \
         gunicorn(BIN / "gunicorn", "wsgi:app", port=free_port(), cwd=ROOT, env=env_b, log=log_b,
                  workers=2, ready_path="/smstrack/login") as b:
        used = 0  # API requests made with the key, on either node

        # A link made on A is served by B at once.
        reply = _api(a, key, "POST", "/campaigns", {"name": "Spring sale", "currency": "USD"})
        assert reply.status == 201, reply.body
        campaign = reply.json()
        reply = _api(a, key, "POST", f"/campaigns/{campaign['id']}/links",
                     {"destination_url": "https://shop.example.com/spring"})
        assert reply.status == 201, reply.body
        link = reply.json()
        used += 2
        first = fetch(f"{b.url}/s/{link['code']}")
        assert first.status == 302 and first.headers["Location"].startswith("https://shop.example.com/spring?smsclid=")

        # An edit on A reaches every worker of B within a second. B is asked
        # from four threads before, during and after the edit.
        answers: list = []
        stop = threading.Event()
        threads = _hammer(b.url, link["code"], stop, answers)
        time.sleep(0.6)  # both of B's workers keep the link in their cache
        edited_at = time.monotonic()
        reply = _api(a, key, "PATCH", f"/links/{link['id']}", {"destination_url": "https://shop.example.com/summer"})
        edit_returned = time.monotonic()
        used += 1
        assert reply.status == 200, reply.body
        time.sleep(1.2)
        stop.set()
        for thread in threads:
            thread.join(15)
        time.sleep(0.3)  # the access log's last lines
        pids = _pids(log_b)
        old, new = "https://shop.example.com/spring?", "https://shop.example.com/summer?"
        assert all(location.startswith((old, new)) for _, _, location in answers), answers[:5]
        per_worker: dict[int, dict] = {}
        for n, at, location in answers:
            seen = per_worker.setdefault(pids.get(n, 0), {"old_before": 0, "old_after": 0, "new": 0, "last_old": None})
            if location.startswith(old):
                seen["old_before" if at < edited_at else "old_after"] += 1
                seen["last_old"] = at - edited_at
            else:
                seen["new"] += 1
        print(f"\nedit took {(edit_returned - edited_at) * 1000:.0f} ms on A; {len(answers)} answers from B")
        for pid, seen in sorted(per_worker.items()):
            last = f"{seen['last_old'] * 1000:.0f} ms" if seen["last_old"] is not None else "-"
            print(f"  worker {pid}: {seen['old_before']} old before the edit, {seen['old_after']} old after it"
                  f" (last {last} after it was sent), {seen['new']} new")
        after_return = last_old_at = max(seen["last_old"] or 0 for seen in per_worker.values())
        after_return -= edit_returned - edited_at
        print(f"  every worker of B served the edit {max(after_return, 0) * 1000:.0f} ms after A answered it")
        workers = {pid for pid in per_worker if pid}
        assert len(workers) == 2, (per_worker, log_b.read_text()[-500:])  # both of B's workers answered
        assert all(per_worker[pid]["old_before"] > 0 and per_worker[pid]["new"] > 0 for pid in workers), per_worker
        assert last_old_at < 1.0, per_worker
        # Nothing old once the edit had reached everyone.
        assert all(location.startswith(new) for _, at, location in answers if at > edited_at + 1.0)

        # A dashboard session from A works on B (the same SECRET_KEY).
        jar = _cookies(page := fetch(f"{a.url}/smstrack/login"), {})
        token = _CSRF.search(page.body.decode()).group(1)
        form = urlencode({"email": "shop@example.com", "password": "correct horse battery", "csrf_token": token})
        reply = fetch(f"{a.url}/smstrack/login", method="POST", body=form.encode(),
                      headers={**_cookie_header(jar), "Content-Type": "application/x-www-form-urlencoded"})
        assert reply.status == 302 and reply.headers["Location"] == "/smstrack/", reply.body[:300]
        _cookies(reply, jar)
        page = fetch(f"{b.url}/smstrack/", headers=_cookie_header(jar))
        assert page.status == 200, page.headers
        assert "Spring sale" in page.body.decode()
        assert fetch(f"{b.url}/smstrack/").status == 302  # without the cookie: the login page

        # Rate limits count across both nodes: the key's limit is reached
        # by A and B together, not by each alone.
        statuses = []
        for n in range(API_LIMIT + 5 - used):
            server = a if n % 2 else b
            statuses.append(_api(server, key, "GET", "/campaigns").status)
        assert statuses[:API_LIMIT - used] == [200] * (API_LIMIT - used), statuses
        assert statuses[API_LIMIT - used:] == [429] * 5, statuses
