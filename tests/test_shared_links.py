"""The link cache shared in Redis: a link created or edited by one app
(one node) is served by another at once, also with its database down; edits
reach every process through its subscriber; a Redis that does not answer
never breaks the redirect. Real Redis, on both databases."""
from __future__ import annotations

import time
import uuid

import pytest

from conftest import REDIS_URL, Actions, redis_or_fail
from flask_smstrack.tracking.shared_links import decode, encode

DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def redis_client():
    client = redis_or_fail()
    yield client
    client.close()


@pytest.fixture
def nodes(make_app, redis_client, tmp_path):
    """Make apps ("nodes") on the test database sharing one Redis prefix of
    this test's own; their subscribers are stopped and keys deleted after."""
    prefix = f"t-redis-{uuid.uuid4().hex[:10]}"
    made = []

    def node(**config):
        app = make_app(SMSTRACK_REDIS_URL=REDIS_URL, SMSTRACK_REDIS_PREFIX=prefix,
                       SMSTRACK_RATELIMIT_KEY_PREFIX=prefix, **config)
        made.append(app)
        return app

    node.prefix = prefix
    yield node
    for app in made:
        shared = app.extensions["smstrack"].shared
        if shared:
            shared.close()
    keys = list(redis_client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        redis_client.delete(*keys)


def _shared(app):
    return app.extensions["smstrack"].shared


def _location(app, code) -> str:
    response = Actions(app).click(code)
    assert response.status_code == 302, response.data
    return response.headers["Location"]


def _wait(check, timeout=2.0):
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.01)
    return check()


def test_without_redis_nothing_is_shared(app, redis_client):
    actions = Actions(app)
    key = actions.api_key()
    link = actions.link(key, actions.campaign(key)["id"])
    assert _location(app, link["code"]).startswith("https://shop.example.com/spring?src=sms&smsclid=")
    assert app.extensions["smstrack"].shared is False


def test_a_created_link_is_served_by_another_node_without_its_database(nodes, redis_client, tmp_path):
    a = nodes()
    # Node B's database cannot be reached: it serves links from Redis only.
    b = nodes(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/missing/none.db")
    actions = Actions(a)
    key = actions.api_key()
    link = actions.link(key, actions.campaign(key)["id"])
    stored = decode(redis_client.get(f"{nodes.prefix}:link:{link['code']}"))
    assert stored is not None and stored.destination == "https://shop.example.com/spring?src=sms"
    assert 0 < redis_client.ttl(f"{nodes.prefix}:link:{link['code']}") <= 7 * 86400
    assert _location(b, link["code"]).startswith("https://shop.example.com/spring?src=sms&smsclid=")


def test_a_first_click_stores_the_link_in_both_caches(nodes, redis_client):
    a = nodes()
    actions = Actions(a)
    key = actions.api_key()
    link = actions.link(key, actions.campaign(key)["id"])
    redis_client.delete(f"{nodes.prefix}:link:{link['code']}")
    b = nodes()
    _location(b, link["code"])
    # Written from a thread, after the redirect answered.
    assert _wait(lambda: redis_client.get(f"{nodes.prefix}:link:{link['code']}") is not None)
    # Once B's subscriber listens (which empties its cache), B keeps links too.
    assert _wait(lambda: _shared(b).listening)
    redis_client.delete(f"{nodes.prefix}:link:{link['code']}")
    b.extensions["smstrack"].links.clear()
    _location(b, link["code"])
    assert _wait(lambda: redis_client.get(f"{nodes.prefix}:link:{link['code']}") is not None)
    assert b.extensions["smstrack"].links.get(link["code"]) is not None


def test_an_edit_reaches_another_node_within_a_second(nodes, redis_client):
    a, b = nodes(), nodes()
    actions = Actions(a)
    key = actions.api_key()
    link = actions.link(key, actions.campaign(key)["id"])
    code = link["code"]
    assert "/spring" in _location(b, code)
    assert _wait(lambda: _shared(b).listening)
    assert "/spring" in _location(b, code)
    assert b.extensions["smstrack"].links.get(code) is not None
    started = time.monotonic()
    response = actions.api("PATCH", f"/links/{link['id']}", key, json={"destination_url": "https://shop.example.com/summer"})
    assert response.status_code == 200, response.json
    assert _wait(lambda: b.extensions["smstrack"].links.get(code) is None, 1.0)
    print(f"edit reached the other node's cache in {(time.monotonic() - started) * 1000:.1f} ms")
    assert _location(b, code).startswith("https://shop.example.com/summer?smsclid=")
    assert decode(redis_client.get(f"{nodes.prefix}:link:{code}")).destination == "https://shop.example.com/summer"
    # Disabling goes the same way: B sends visitors to the fallback at once.
    actions.api("PATCH", f"/links/{link['id']}", key, json={"disabled": True})
    assert _wait(lambda: Actions(b).click(code).status_code == 410, 1.0)


def test_a_bulk_change_drops_every_link_and_reconnecting_clears_the_cache(nodes, redis_client):
    from flask_smstrack.state import links_changed

    a, b = nodes(), nodes()
    actions = Actions(a)
    key = actions.api_key()
    link = actions.link(key, actions.campaign(key)["id"])
    _location(b, link["code"])
    assert _wait(lambda: _shared(b).listening)
    _location(b, link["code"])
    cache = b.extensions["smstrack"].links
    assert cache.get(link["code"]) is not None
    other = redis_client.set(f"{nodes.prefix}-other:link:{link['code']}", "kept")
    with a.app_context():
        links_changed(dropped=None)
    assert _wait(lambda: cache.get(link["code"]) is None, 1.0)
    assert redis_client.get(f"{nodes.prefix}:link:{link['code']}") is None
    assert other and redis_client.get(f"{nodes.prefix}-other:link:{link['code']}") == b"kept"
    # The subscriber's connection is cut: once back, it forgets what it kept.
    _location(b, link["code"])
    assert cache.get(link["code"]) is not None
    name = f"{nodes.prefix}:links-listener"
    killed = [c["id"] for c in redis_client.client_list() if c.get("name") == name]
    assert killed
    for client_id in killed:
        redis_client.client_kill_filter(_id=client_id)
    assert _wait(lambda: cache.get(link["code"]) is None, 3.0)
    assert _wait(lambda: _shared(b).listening, 3.0)


def test_a_dead_redis_falls_through_to_the_database_and_backs_off(make_app, monkeypatch):
    app = make_app(SMSTRACK_REDIS_URL=DEAD_REDIS, SMSTRACK_RATELIMIT_STORAGE_URI="memory://")
    actions = Actions(app)
    key = actions.api_key()
    link = actions.link(key, actions.campaign(key)["id"])  # its write-through fails, the link is made
    shared = _shared(app)
    try:
        calls = []
        real_get = shared.client.get
        monkeypatch.setattr(shared.client, "get", lambda *a: calls.append(a) or real_get(*a))
        app.extensions["smstrack"].links.clear()
        assert "/spring" in _location(app, link["code"])
        app.extensions["smstrack"].links.clear()
        assert "/spring" in _location(app, link["code"])
        # Redis failed once (or not at all since the write-through failed):
        # the next lookups leave it alone for a while.
        assert len(calls) <= 1 and shared._down_until > time.monotonic()
    finally:
        shared.close()


def test_encoding_is_compact_and_safe(nodes):
    from flask_smstrack.tracking.clicks import CachedLink

    link = CachedLink(1, 2, None, 3, "https://x.example/?a=1", True, "https://x.example/?a=1&smsclid=", "",
                      False, 1.5, None)
    raw = encode(link)
    assert decode(raw) == link and len(raw) < 100
    assert decode(b"[1,2]") is None and decode(b"not json") is None


def test_after_a_fork_the_child_starts_afresh(nodes):
    from flask_smstrack.tracking.shared_links import _after_fork

    a = nodes()
    actions = Actions(a)
    key = actions.api_key()
    link = actions.link(key, actions.campaign(key)["id"])
    _location(a, link["code"])
    shared = _shared(a)
    assert _wait(lambda: shared.listening)
    _location(a, link["code"])
    assert shared._thread is not None and a.extensions["smstrack"].links.get(link["code"]) is not None
    thread, stop = shared._thread, shared._stop
    _after_fork()
    try:
        assert shared._thread is None and a.extensions["smstrack"].links.get(link["code"]) is None
        _location(a, link["code"])
        assert shared._thread is not None and shared._thread is not thread
    finally:
        stop.set()


def test_editing_a_campaign_link_reaches_its_recipients_links(nodes, redis_client):
    from sqlalchemy import insert
    from wsgi import db

    from flask_smstrack.models import Link

    a, b = nodes(), nodes()
    actions = Actions(a)
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"])
    with a.app_context():
        db.session.execute(insert(Link), [{"campaign_id": campaign["id"], "code": "ana-own-link", "parent_id": link["id"],
                                           "recipient_id": 7, "destination_url": "https://ignored.example/"}])
        db.session.commit()
    assert _location(b, "ana-own-link").startswith("https://shop.example.com/spring?src=sms&smsclid=")
    assert _wait(lambda: redis_client.get(f"{nodes.prefix}:link:ana-own-link") is not None)
    actions.api("PATCH", f"/links/{link['id']}", key, json={"destination_url": "https://shop.example.com/summer"})
    # The recipient's own link is dropped everywhere, and read again on its next click.
    assert redis_client.get(f"{nodes.prefix}:link:ana-own-link") is None
    assert _wait(lambda: b.extensions["smstrack"].links.get("ana-own-link") is None, 1.0)
    assert _location(b, "ana-own-link").startswith("https://shop.example.com/summer?smsclid=")
