"""Conversions posted while the database (a throwaway cluster) is stopped:
the collector and the API answer 202 (queued), invalid ones still 400;
once the database is back, the tracker's background replay stores each
order id exactly once (replays of an order id deduplicated, a verified one
upgrading the browser's), counted by order id."""
from __future__ import annotations

import json
import time
from collections import Counter

import pytest
from sqlalchemy import create_engine, text

from e2e.seed import Seed
from e2e.support import fetch, free_port, gunicorn
from faults.spool_support import BIN, FULL, ROOT, shared_cluster, tracker_env

pytestmark = pytest.mark.timeout(300)


def _stored(url: str) -> dict[str, tuple[int, str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT order_id, count(*), max(trust) FROM smstrack_conversions"
                                     " GROUP BY order_id")).all()
        return {order: (n, trust) for order, n, trust in rows}
    finally:
        engine.dispose()


def test_conversions_during_an_outage_are_stored_once(tmp_path, monkeypatch):
    orders = 100 if FULL else 12
    pg = shared_cluster(tmp_path)
    try:
        # Every beacon names the one click: its rate limit is not what is tested.
        env = tracker_env(pg.url, tmp_path / "spool", SMSTRACK_RATELIMIT_COLLECT_CLICK="100000 per minute")
        with Seed(env) as seed:
            key = seed.user_with_key("conversions@example.com")
            seed.campaign_with_link("conversions@example.com", "https://shop.example/spring", "convspool")
        with gunicorn(BIN / "gunicorn", "wsgi:app", port=free_port(), cwd=ROOT, env=env,
                      log=tmp_path / "gunicorn.log", workers=1, ready_path="/smstrack/t.js") as server:
            api = f"{server.url}/smstrack/api/v1"
            auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            click = fetch(f"{server.url}/s/convspool")
            click_id = click.headers["Location"].rsplit("smsclid=", 1)[1]
            assert fetch(f"{api}/campaigns", headers=auth).status == 200  # the key is known to the worker
            token = fetch(f"{api}/conversion-tokens", method="POST", headers=auth, body=json.dumps(
                {"order_id": "T-1", "revenue": "5.00", "currency": "USD"}).encode()).json()["token"]

            pg.stop()
            statuses: Counter = Counter()
            sent: Counter = Counter()

            def beacon(order: str, **extra) -> None:
                body = {"type": "conversion", "click_id": click_id, "order_id": order, "revenue": "49.90",
                        "currency": "USD", **extra}
                reply = fetch(f"{server.url}/smstrack/collect", method="POST", body=json.dumps(body).encode(),
                              headers={"Content-Type": "text/plain"})
                statuses[reply.status] += 1
                assert reply.status == 202 and reply.json()["status"] == "queued", reply.body
                sent[order] += 1

            def server_side(order: str) -> None:
                reply = fetch(f"{api}/conversions", method="POST", headers=auth, body=json.dumps(
                    {"order_id": order, "revenue": "10.00", "currency": "USD", "click_id": click_id}).encode())
                statuses[reply.status] += 1
                assert reply.status == 202 and reply.json()["queued"] is True, reply.body
                sent[order] += 1

            for i in range(orders):
                beacon(f"U-{i}")
                beacon(f"U-{i}")  # the thank-you page reloaded: a duplicate
                server_side(f"V-{i}")
                if i % 3 == 0:
                    server_side(f"U-{i}")  # the shop's server confirms it: upgrades the browser's
            beacon("T-1", token=token, revenue="5.00", event="purchase")
            invalid = fetch(f"{server.url}/smstrack/collect", method="POST", headers={"Content-Type": "text/plain"},
                            body=json.dumps({"type": "conversion", "revenue": "lots", "currency": "USD"}).encode())
            assert invalid.status == 400, invalid.body
            pg.start()
            pg.wait_ready()
            deadline = time.monotonic() + 60
            stored: dict = {}
            while time.monotonic() < deadline:
                try:
                    stored = _stored(pg.url)
                except Exception:
                    stored = {}
                if set(stored) >= set(sent):
                    break
                time.sleep(0.2)
            time.sleep(0.5)  # anything replayed twice would show now
            stored = _stored(pg.url)
            after = fetch(f"{api}/conversions", method="POST", headers=auth, body=json.dumps(
                {"order_id": "V-0", "revenue": "10.00", "currency": "USD"}).encode())
    finally:
        if not pg.running():
            pg.start()
    print(f"\nconversions during an outage: {sum(sent.values())} posted for {len(sent)} order ids"
          f" (statuses {dict(statuses)}), {sum(n for n, _ in stored.values())} stored for {len(stored)} order ids;"
          f" {sum(1 for n, _ in stored.values() if n > 1)} stored twice")
    assert set(stored) == set(sent)
    assert all(n == 1 for n, _ in stored.values()), stored
    assert {o for o, (_, trust) in stored.items() if trust == "verified"} == (
        {f"V-{i}" for i in range(orders)} | {f"U-{i}" for i in range(0, orders, 3)} | {"T-1"})
    assert after.status == 200 and after.json()["duplicate"] is True
