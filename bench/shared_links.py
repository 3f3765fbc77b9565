"""Benchmark: the redirect with and without the shared link cache in Redis.

    python bench/shared_links.py [--database-url URL] [--redis-url URL] [--links 3000]

In one process (no HTTP server, so only the app's own costs count), on a
fresh SQLite database unless ``--database-url`` is given (tables made if
missing; the rows it adds are left), it times:

* ``find_link`` alone: a link in the process's cache, a link in Redis only,
  a first lookup without Redis (database), and a first lookup with Redis
  (a miss in Redis, the database, and the write to Redis);
* the whole redirect (``GET /s/<code>`` through the WSGI test client, click
  written to the database) for a cached link and for first clicks, each with
  Redis configured and not;
* writing recipients' links through to Redis, per link, against reading them
  through on their first click;
* how long an edit takes to reach another app's cache through pub/sub.

Keys go under a prefix of their own, deleted at the end.
"""
from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _app(database_url: str, redis_url: str | None, prefix: str, spool: str):
    from wsgi import create_app

    config = {
        "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "bench", "SMSTRACK_SPOOL_DIR": spool,
        "SMSTRACK_RATELIMIT_ENABLED": False, "SMSTRACK_REDIS_PREFIX": prefix, "SMSTRACK_QUIET_HOURS": None,
    }
    if redis_url:
        config["SMSTRACK_REDIS_URL"] = redis_url
    return create_app(config)


def _per_call(fn, items, passes: int = 3) -> float:
    """Microseconds per call of ``fn`` over ``items`` (median of ``passes``)."""
    runs = []
    for _ in range(passes):
        started = time.perf_counter()
        for item in items:
            fn(item)
        runs.append((time.perf_counter() - started) / len(items) * 1e6)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--links", type=int, default=3000)
    args = parser.parse_args()
    import redis
    from sqlalchemy import insert

    from flask_smstrack.db.migrate import upgrade
    from flask_smstrack.manage import create_campaign, create_link, update_link
    from flask_smstrack.models import Link
    from flask_smstrack.state import get_state, links_changed
    from flask_smstrack.tracking.clicks import find_link
    from flask_smstrack.tracking.shared_links import encode, shared_links

    tmp = tempfile.mkdtemp()
    database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    plain = _app(database_url, None, prefix, tmp)
    shared = _app(database_url, args.redis_url, prefix, tmp)
    other = _app(database_url, args.redis_url, prefix, tmp)
    client = redis.Redis.from_url(args.redis_url)
    n = args.links
    try:
        with plain.app_context():
            upgrade()
            campaign = create_campaign({"name": f"Bench {prefix}", "currency": "USD"}, None)
            link = create_link(campaign, {"destination_url": "https://shop.example.com/spring"})
            db = get_state().db
            sets = [[f"{prefix[-8:]}{secrets.token_hex(6)}" for _ in range(n)] for _ in range(14)]
            for codes in sets:
                db.session.execute(insert(Link), [
                    {"campaign_id": campaign.id, "code": code, "destination_url": "https://shop.example.com/r",
                     "append_click_id": True} for code in codes
                ])
            db.session.commit()
            code, campaign_id, link_id = link.code, campaign.id, link.id
        print(f"database {database_url.split('@')[-1]}, Redis {args.redis_url}, {n} links per first-click run")

        print("find_link alone (us per lookup):")
        with plain.app_context():
            state = get_state()
            find_link(code, state)
            print(f"  in the process's cache:            {_per_call(lambda c: find_link(c, state), [code] * n):8.1f}")
            print(f"  first lookup, no Redis (database): {_per_call(lambda c: find_link(c, state), sets[0], 1):8.1f}")
        with shared.app_context(), shared.test_request_context():
            state = get_state()
            cache = shared_links(state)
            cache.start()
            while not cache.listening:
                time.sleep(0.01)
            print(f"  first lookup with Redis (miss, database, write): "
                  f"{_per_call(lambda c: find_link(c, state), sets[1], 1):8.1f}")

            def from_redis(c):
                state.links.discard(c)
                find_link(c, state)
            print(f"  in Redis only:                     {_per_call(from_redis, sets[1]):8.1f}")

        print("the whole redirect, click written (us per request; median of 3 alternating rounds):")
        results: dict[str, dict[str, list]] = {"no Redis": {"cached": [], "first": []}, "Redis": {"cached": [], "first": []}}
        spare = iter(sets[7:])
        for _ in range(3):
            for name, app in (("no Redis", plain), ("Redis", shared)):
                test = app.test_client(use_cookies=False)
                test.get(f"/s/{code}")
                results[name]["cached"].append(_per_call(lambda c: test.get(f"/s/{c}"), [code] * (n // 3), 1))
                results[name]["first"].append(_per_call(lambda c: test.get(f"/s/{c}"), next(spare)[: n // 3], 1))
        for name, found in results.items():
            cached, first = statistics.median(found["cached"]), statistics.median(found["first"])
            print(f"  {name:9} cached link {cached:7.1f} ({1e6 / cached:5.0f}/s)   "
                  f"first click {first:7.1f} ({1e6 / first:5.0f}/s)")

        print("recipients' links into Redis:")
        with shared.app_context():
            cache = shared_links(get_state())
            sample = encode(find_link(sets[4][0], get_state()))
            started = time.perf_counter()
            pipe = client.pipeline(transaction=False)
            for c in sets[5]:
                pipe.set(cache.prefix + c, sample, ex=cache.ttl)
            pipe.execute()
            per = (time.perf_counter() - started) / n * 1e6
            print(f"  written through in one pipeline: {per:.1f} us per link ({per * 100_000 / 1e6:.1f} s per"
                  f" 100,000 recipients), {len(sample)} bytes each")
            started = time.perf_counter()
            links_changed(stored=sets[6][:200])
            per = (time.perf_counter() - started) / 200 * 1e6
            print(f"  written through one by one (links_changed, reading each from the database): {per:.0f} us per link")

        print("an edit reaching another app's cache through pub/sub:")
        with other.app_context(), other.test_request_context():
            cache = shared_links(get_state())
            cache.start()
            while not cache.listening:
                time.sleep(0.01)
        times = []
        for i in range(20):
            with other.app_context():
                find_link(code, get_state())
                assert get_state().links.get(code) is not None
            with shared.app_context():
                obj = get_state().db.session.get(Link, link_id)
                started = time.perf_counter()
                update_link(obj, {"destination_url": f"https://shop.example.com/{i}"})
                committed = time.perf_counter()
            with other.app_context():
                links = get_state().links
                while links.get(code) is not None:
                    time.sleep(0.0002)
                times.append(((time.perf_counter() - started) * 1000, (time.perf_counter() - committed) * 1000))
        print(f"  edit call to other cache empty: median {statistics.median(t for t, _ in times):.1f} ms,"
              f" max {max(t for t, _ in times):.1f} ms; after update_link returned: median"
              f" {statistics.median(t for _, t in times):.2f} ms")
        del campaign_id
    finally:
        for app in (shared, other):
            cache = app.extensions["smstrack"].shared
            if cache:
                cache.close()
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


if __name__ == "__main__":
    main()
