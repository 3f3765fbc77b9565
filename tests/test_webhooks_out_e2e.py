"""Outbound webhooks on a real gunicorn with two processes, without Redis
(the periodic thread of a web process delivers) and with Redis (the real
``flask smstrack worker`` does): a click and a conversion reach a receiver
that verifies their signatures, an endpoint that keeps failing is disabled
and the dashboard says so, and "Resend" sends a delivery again with the
same ``webhook-id``."""
from __future__ import annotations

import json
import subprocess
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import IPHONE, PASSWORD_HASH_METHOD, REDIS_URL, _empty_tables, redis_or_fail
from e2e.browser import BIN
from e2e.receiver import Receiver
from e2e.seed import Seed
from e2e.support import ROOT, clean_env, fetch, free_port, gunicorn, poll, stop
from test_jobs_web_e2e import Browser

OWNER = "hooks@example.com"


def _api(server, key: str, method: str, path: str, body: dict | None = None):
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    reply = fetch(f"{server.url}/smstrack/api/v1{path}", method=method, headers=headers,
                  body=json.dumps(body).encode() if body is not None else None)
    return reply.status, (reply.json() if reply.body else None)


@pytest.mark.parametrize("redis", [False, True], ids=["inline", "rq"])
def test_events_reach_receivers_through_gunicorn(migrated, tmp_path, redis):
    _empty_tables(migrated)
    env = clean_env(
        DATABASE_URL=migrated, SECRET_KEY="webhooks-e2e-secret", SMSTRACK_SPOOL_DIR=str(tmp_path / "spool"),
        SMSTRACK_INSTANCE_PATH=str(tmp_path / "instance"), SMSTRACK_PASSWORD_HASH_METHOD=PASSWORD_HASH_METHOD,
        SMSTRACK_JOB_INTERVAL="1", SMSTRACK_WEBHOOK_RETRY_BASE="0.05", SMSTRACK_WEBHOOK_RETRIES="1",
        SMSTRACK_WEBHOOK_DISABLE_AFTER="1",
    )
    worker = None
    if redis:
        redis_or_fail()
        env.update(SMSTRACK_REDIS_URL=REDIS_URL, SMSTRACK_REDIS_PREFIX=f"t-hooks-{uuid.uuid4().hex[:8]}")
    with Seed(env) as seed:
        key = seed.user_with_key(OWNER)
        campaign_id, _ = seed.campaign_with_link(OWNER, "https://shop.example.com/spring", "hook1")
    with (
        Receiver() as good, Receiver(fail=-1, fail_status=502) as bad,
        gunicorn(BIN / "gunicorn", "wsgi:app", port=free_port(), cwd=ROOT, env=env, log=tmp_path / "web.log",
                 workers=2, ready_path="/smstrack/login") as server,
    ):
        try:
            if redis:
                with open(tmp_path / "worker.log", "ab") as out:
                    worker = subprocess.Popen([str(BIN / "flask"), "--app", "wsgi", "smstrack", "worker"],
                                              cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            status, endpoint = _api(server, key, "POST", "/webhook-endpoints",
                                    {"url": good.url + "/in", "events": ["click", "conversion"]})
            assert status == 201, endpoint
            status, failing = _api(server, key, "POST", "/webhook-endpoints", {"url": bad.url, "events": ["click"]})
            assert status == 201, failing
            click = fetch(server.url + "/s/hook1", headers={"User-Agent": IPHONE})
            assert click.status == 302
            click_id = parse_qs(urlsplit(click.headers["Location"]).query)["smsclid"][0]
            status, conversion = _api(server, key, "POST", "/conversions", {
                "click_id": click_id, "event": "purchase", "revenue": "49.90", "currency": "USD", "order_id": "E-1"})
            assert status == 201, conversion
            poll(lambda: len(good.accepted()), lambda n: n >= 2, timeout=30)
            payloads = good.verified(endpoint["secret"])
            assert sorted(p["type"] for p in payloads) == ["click", "conversion"], payloads
            sale = next(p["data"] for p in payloads if p["type"] == "conversion")
            assert (sale["click_id"], sale["revenue"], sale["campaign_id"]) == (click_id, "49.90", campaign_id)

            listed = poll(lambda: _api(server, key, "GET", "/webhook-endpoints")[1]["endpoints"],
                          lambda eps: not eps[1]["enabled"], timeout=30)
            assert listed[1]["enabled"] is False and "HTTP 502" in listed[1]["disabled_reason"], listed
            assert len(bad.requests) == 2  # the first attempt and one retry

            user = Browser(server.url)
            user.submit("/smstrack/login", "/smstrack/login", email=OWNER, password="correct horse battery")
            page = user.get("/smstrack/webhooks")
            assert f"Webhook {bad.url} is disabled: 1 deliveries in a row failed every retry" in page
            deliveries = _api(server, key, "GET", f"/webhook-deliveries?endpoint_id={endpoint['id']}")[1]
            sold = next(d for d in deliveries["deliveries"] if d["event_type"] == "conversion")
            user.submit("/smstrack/webhooks", f"/smstrack/webhooks/deliveries/{sold['id']}/resend")
            poll(lambda: len(good.accepted()), lambda n: n >= 3, timeout=30)
            assert [r.webhook_id for r in good.accepted()].count(sold["event_id"]) == 2
            assert len(good.verified(endpoint["secret"])) == 3
        finally:
            if worker is not None:
                stop(worker)
