"""Rate limits: the collector, the API and the login answer 429 with
Retry-After; the redirect never refuses, but marks a flood as bots. Each
runs on memory storage and on the real Redis at 127.0.0.1:6379 (its own
key prefix per test, deleted afterwards)."""
from __future__ import annotations

import logging
import time
import uuid

import pytest
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy import select

from conftest import REDIS_URL, Actions, click_id_of, redis_or_fail
from flask_smstrack.models import Click
from flask_smstrack.tracking.flood import FloodCounter, address_key
from test_dashboard import PASSWORD, csrf_token, login
from test_extension import make_host  # noqa: F401  (fixture)

OTHER = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture(params=["memory", "redis"])
def storage(request):
    """Config for the rate limit storage: memory, or Redis with a key prefix
    of this test's own, whose keys are deleted afterwards."""
    if request.param == "memory":
        yield {}
        return
    client = redis_or_fail()
    prefix = f"smstrack-test-{uuid.uuid4().hex[:12]}"
    yield {"SMSTRACK_RATELIMIT_STORAGE_URI": REDIS_URL, "SMSTRACK_RATELIMIT_KEY_PREFIX": prefix}
    keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def limited(make_app, storage):
    """Build apps with small limits on the chosen storage."""

    def make(**config):
        return make_app(**storage, **config)

    return make


def _link(actions: Actions) -> tuple[str, dict, dict]:
    key = actions.api_key()
    campaign = actions.campaign(key)
    return key, campaign, actions.link(key, campaign["id"])


def _assert_429(response, key: str) -> int:
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    (message,) = response.json["errors"]["rate_limit"]
    assert key in message and f"Try again in {retry_after} second" in message
    return retry_after


# -- collector ----------------------------------------------------------------


def test_collector_refuses_posts_beyond_the_address_rate(limited):
    app = limited(SMSTRACK_RATELIMIT_COLLECT="3 per minute")
    actions = Actions(app)
    _, _, link = _link(actions)
    click_id = click_id_of(actions.click(link["code"]))
    beacon = {"type": "landing", "click_id": click_id}
    for _ in range(3):
        assert actions.collect(beacon, headers={"Origin": "https://shop.example.com"}).status_code == 202
    response = actions.collect(beacon, headers={"Origin": "https://shop.example.com"})
    _assert_429(response, "SMSTRACK_RATELIMIT_COLLECT")
    # The page's script can read the answer (any origin may post by default).
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    # Another address has its own count; the snippet and preflights are not counted.
    assert actions.collect(beacon, environ_base=OTHER).status_code == 202
    assert actions.client.get("/smstrack/t.js").status_code == 200
    assert actions.client.options("/smstrack/collect").status_code == 204


def test_collector_limits_each_click_id(limited):
    app = limited(SMSTRACK_RATELIMIT_COLLECT_CLICK="2 per minute")
    actions = Actions(app)
    _, _, link = _link(actions)
    first, second = (click_id_of(actions.click(link["code"])) for _ in range(2))
    order = {"type": "conversion", "click_id": first, "event": "signup"}
    assert actions.collect(order).status_code == 202
    assert actions.collect(order, environ_base=OTHER).status_code == 202
    _assert_429(actions.collect(order, environ_base={"REMOTE_ADDR": "198.51.100.7"}), "SMSTRACK_RATELIMIT_COLLECT_CLICK")
    assert actions.collect({"type": "landing", "click_id": second}).status_code == 202


def test_posts_naming_unknown_click_ids_are_limited_tightly(limited):
    app = limited(SMSTRACK_RATELIMIT_COLLECT_UNKNOWN="2 per minute")
    actions = Actions(app)
    _, _, link = _link(actions)
    known = click_id_of(actions.click(link["code"]))
    for _ in range(2):
        response = actions.collect({"type": "landing", "click_id": uuid.uuid4().hex})
        assert response.status_code == 202 and response.json["confirmed"] is False
    _assert_429(actions.collect({"type": "landing", "click_id": uuid.uuid4().hex}), "SMSTRACK_RATELIMIT_COLLECT_UNKNOWN")
    # Only the guesses are refused: a real visitor behind the same address is not.
    response = actions.collect({"type": "landing", "click_id": known})
    assert response.status_code == 202 and response.json["confirmed"] is True
    assert actions.collect({"type": "landing", "click_id": uuid.uuid4().hex}, environ_base=OTHER).status_code == 202


def test_a_thousand_forged_conversions_are_refused_with_the_defaults(make_app):
    """One click, then conversions with fresh order ids and huge revenue:
    the default limits refuse them after 30 a minute."""
    app = make_app()
    actions = Actions(app)
    key, campaign, link = _link(actions)
    click_id = click_id_of(actions.click(link["code"]))
    statuses = [
        actions.collect({"type": "conversion", "click_id": click_id, "order_id": f"forged-{i}",
                         "revenue": "1000000000", "currency": "USD"}).status_code
        for i in range(31)
    ]
    assert statuses == [202] * 30 + [429]
    assert actions.report(key, campaign["id"])["conversions"] == 30


# -- API ------------------------------------------------------------------------


def test_api_is_limited_per_key_per_user_and_per_address(limited):
    app = limited(SMSTRACK_RATELIMIT_API="3 per minute")
    actions = Actions(app)
    key, other_key = actions.api_key(), actions.api_key("other@example.com")
    for _ in range(3):
        assert actions.api("GET", "/campaigns", key).status_code == 200
    _assert_429(actions.api("GET", "/campaigns", key), "SMSTRACK_RATELIMIT_API")
    assert actions.api("GET", "/campaigns", other_key).status_code == 200

    # Session callers are counted per user, whatever their address.
    client = login(app)
    for i in range(3):
        assert client.get("/smstrack/api/v1/campaigns", environ_base={"REMOTE_ADDR": f"192.0.2.{i}"}).status_code == 200
    _assert_429(client.get("/smstrack/api/v1/campaigns"), "SMSTRACK_RATELIMIT_API")

    # Callers with neither are counted per address, before they are refused.
    anonymous = app.test_client()
    for _ in range(3):
        assert anonymous.get("/smstrack/api/v1/campaigns", environ_base=OTHER).status_code == 401
    _assert_429(anonymous.get("/smstrack/api/v1/campaigns", environ_base=OTHER), "SMSTRACK_RATELIMIT_API")


# -- login ----------------------------------------------------------------------


def _try_login(client, email="owner@example.com", password="wrong password", **kw):
    token = csrf_token(client, "/smstrack/login")
    return client.post("/smstrack/login", data={"email": email, "password": password, "csrf_token": token}, **kw)


def test_failed_logins_are_slowed_more_and_more(limited):
    app = limited(SMSTRACK_RATELIMIT_LOGIN_ACCOUNT="6 per minute", SMSTRACK_RATELIMIT_LOGIN_DELAY=1)
    actions = Actions(app)
    actions.user()
    client = app.test_client()
    for _ in range(3):
        assert _try_login(client).status_code == 400
    # The fourth try waits, even with the right password, which is not checked.
    response = _try_login(client, password=PASSWORD)
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert "Too many failed logins for this account or from your network. Try again in 1 second." in response.text
    # Another account, from another address, is not slowed.
    actions.user("other@example.com")
    assert _try_login(app.test_client(), "other@example.com", PASSWORD, environ_base=OTHER).status_code == 302

    time.sleep(1.05)
    assert _try_login(client).status_code == 400
    response = _try_login(client, password=PASSWORD)
    assert response.status_code == 429 and response.headers["Retry-After"] == "2"


def test_wrong_passwords_in_a_row_are_slowed_with_the_defaults(make_app):
    app = make_app()
    Actions(app).user()
    client = app.test_client()
    assert [_try_login(client).status_code for _ in range(5)] == [400] * 5
    response = _try_login(client, password=PASSWORD)
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"


def test_failed_logins_then_refuse_the_account_and_the_address(limited):
    app = limited(SMSTRACK_RATELIMIT_LOGIN_ACCOUNT="1 per minute", SMSTRACK_RATELIMIT_LOGIN_ADDRESS="1 per minute")
    actions = Actions(app)
    actions.user()
    actions.user("other@example.com")
    assert _try_login(app.test_client()).status_code == 400
    # The account is refused from anywhere, the address for any account.
    response = _try_login(app.test_client(), password=PASSWORD, environ_base=OTHER)
    assert response.status_code == 429 and 55 <= int(response.headers["Retry-After"]) <= 60
    assert "Too many failed logins" in response.text
    assert _try_login(app.test_client(), "other@example.com", PASSWORD).status_code == 429
    assert _try_login(app.test_client(), "other@example.com", PASSWORD, environ_base=OTHER).status_code == 302


def test_a_good_login_forgets_the_failures(limited):
    app = limited(SMSTRACK_RATELIMIT_LOGIN_ACCOUNT="4 per minute")
    Actions(app).user()
    client = app.test_client()
    assert _try_login(client).status_code == 400
    assert _try_login(client, password=PASSWORD).status_code == 302
    client = app.test_client()
    assert _try_login(client).status_code == 400
    assert _try_login(client, password=PASSWORD).status_code == 302


# -- redirect -------------------------------------------------------------------


def test_a_click_flood_is_redirected_but_counted_as_bots(limited):
    from wsgi import db

    app = limited(SMSTRACK_RATELIMIT_REDIRECT="3 per minute")
    actions = Actions(app)
    key, campaign, link = _link(actions)
    # Five phones behind one address, then one behind another.
    for _ in range(5):
        response = actions.click(link["code"], client=app.test_client())
        assert response.status_code == 302
        assert response.headers["Location"].startswith("https://shop.example.com/spring")
    assert actions.click(link["code"], ip="81.2.69.161", client=app.test_client()).status_code == 302

    with app.app_context():
        clicks = db.session.execute(select(Click).order_by(Click.id)).scalars().all()
        assert [(c.kind, c.bot_reason) for c in clicks] == [("human", None)] * 3 + [("bot", "flood")] * 2 + [
            ("human", None)
        ]
    report = actions.report(key, campaign["id"])
    assert (report["clicks"], report["unique_clicks"], report["bots"]) == (4, 4, 2)
    assert report["ctr"] == pytest.approx(0.04)  # 4 of 100 messages sent: the flood is left out


def test_flood_counts_are_shared_through_redis_in_batches():
    """Two processes (two counters) on one Redis: a flood split between
    them is seen, while a single click never reaches Redis."""
    from limits.storage import storage_from_string

    client = redis_or_fail()
    prefix = f"smstrack-test-{uuid.uuid4().hex[:12]}"
    storage = storage_from_string(REDIS_URL)
    try:
        a, b = (FloodCounter(100, 60, storage, prefix) for _ in range(2))
        assert a.batch == 5
        assert not a.hit("198.51.100.1")
        assert list(client.scan_iter(match=f"*{prefix}*")) == []
        flagged = [counter.hit("192.0.2.1") for _ in range(60) for counter in (a, b)]
        assert flagged[:90] == [False] * 90
        assert all(flagged[-8:])
        assert a.hit("192.0.2.1") and b.hit("192.0.2.1")
        # Once the shared count is beyond the rate, the flood costs no more round trips.
        (name,) = client.scan_iter(match=f"*{prefix}/flood/*")
        shared = int(client.get(name))
        assert all(a.hit("192.0.2.1") for _ in range(100))
        assert int(client.get(name)) == shared <= 100 + 2 * a.batch
    finally:
        keys = list(client.scan_iter(match=f"*{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_flood_counting_never_fails_the_redirect(caplog):
    from limits.storage import storage_from_string

    counter = FloodCounter(2, 60, storage_from_string("redis://127.0.0.1:1/0", socket_connect_timeout=0.2))
    with caplog.at_level(logging.WARNING, logger="flask_smstrack"):
        assert [counter.hit("192.0.2.1") for _ in range(4)] == [False, False, True, True]
    assert "counting in this process" in caplog.text


def test_ipv6_addresses_are_counted_by_their_64_network():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("192.0.2.1") == "192.0.2.1"


# -- set-up ---------------------------------------------------------------------


def test_limits_can_be_switched_off(make_app):
    app = make_app(SMSTRACK_RATELIMIT_ENABLED=False, SMSTRACK_RATELIMIT_COLLECT="1 per minute")
    actions = Actions(app)
    for _ in range(3):
        assert actions.collect({"type": "landing", "click_id": "unknown"}).status_code == 202
    assert app.extensions["smstrack"].flood is None


@pytest.mark.parametrize("value", ["lots", "300 per fortnight", ""])
def test_a_bad_rate_says_which_key(make_app, value):
    with pytest.raises(RuntimeError, match="SMSTRACK_RATELIMIT_API must be a rate such as"):
        make_app(SMSTRACK_RATELIMIT_API=value)


def test_a_redirect_rate_is_one_rate(make_app):
    with pytest.raises(RuntimeError, match="SMSTRACK_RATELIMIT_REDIRECT must be a rate such as '300 per minute'"):
        make_app(SMSTRACK_RATELIMIT_REDIRECT="10/second;300/minute")


def test_a_bad_storage_says_which_key(make_app):
    with pytest.raises(RuntimeError, match="SMSTRACK_RATELIMIT_STORAGE_URI is 'nosuch://x', which cannot be used"):
        make_app(SMSTRACK_RATELIMIT_STORAGE_URI="nosuch://x")


def test_a_storage_that_fails_breaks_nothing(make_app, caplog):
    """Redis down: every request is served, and counted in each process's
    memory meanwhile."""
    app = make_app(
        SMSTRACK_RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0",
        SMSTRACK_RATELIMIT_COLLECT="3 per minute",
        SMSTRACK_RATELIMIT_LOGIN_ACCOUNT="1 per minute",
        SMSTRACK_RATELIMIT_REDIRECT="2 per minute",
    )
    actions = Actions(app)
    _, _, link = _link(actions)
    assert [actions.click(link["code"], client=app.test_client()).status_code for _ in range(3)] == [302] * 3
    beacon = {"type": "landing", "click_id": "nosuchclick"}
    assert [actions.collect(beacon).status_code for _ in range(4)] == [202, 202, 202, 429]
    assert _try_login(app.test_client()).status_code == 400
    assert _try_login(app.test_client(), password=PASSWORD).status_code == 429
    assert "Rate limit storage failed" in caplog.text


def _beacons(client, n: int) -> list[int]:
    beacon = {"type": "landing", "click_id": "nosuchclick"}
    return [client.post("/smstrack/collect", json=beacon).status_code for _ in range(n)]


def test_host_routes_and_settings_are_left_alone(make_host, storage):  # noqa: F811
    """Mounted in a shop: the shop's routes are never limited by smstrack,
    and the shop's RATELIMIT_* settings (for a Flask-Limiter of its own)
    are neither read nor written."""
    host = make_host(
        **storage,
        SMSTRACK_RATELIMIT_COLLECT="2 per minute",
        SMSTRACK_RATELIMIT_API="1 per minute",
        RATELIMIT_ENABLED=False,
        RATELIMIT_DEFAULT="1 per minute",
        RATELIMIT_APPLICATION="1 per minute",
    )
    client = host.test_client()
    assert [client.get("/").status_code for _ in range(5)] == [200] * 5
    assert _beacons(client, 3) == [202, 202, 429]
    assert client.get("/login").status_code == 200
    assert host.config["RATELIMIT_ENABLED"] is False
    assert "RATELIMIT_STRATEGY" not in host.config
    assert "limiter" not in host.extensions


def test_a_host_limiter_counts_on_its_own(make_host, storage):  # noqa: F811
    host = make_host(**storage, SMSTRACK_RATELIMIT_COLLECT="2 per minute")
    shop_limiter = Limiter(get_remote_address, storage_uri="memory://")

    @host.get("/limited")
    @shop_limiter.limit("2 per minute")
    def limited_page():
        return "limited"

    shop_limiter.init_app(host)
    client = host.test_client()
    assert [client.get("/limited").status_code for _ in range(3)] == [200, 200, 429]
    assert _beacons(client, 3) == [202, 202, 429]
    assert [client.get("/").status_code for _ in range(3)] == [200] * 3
    assert host.extensions["limiter"] == {shop_limiter}


def test_set_password_ends_an_accounts_lockout(limited):
    app = limited(SMSTRACK_RATELIMIT_LOGIN_ACCOUNT="1 per minute")
    Actions(app).user()
    assert _try_login(app.test_client()).status_code == 400
    assert _try_login(app.test_client(), password=PASSWORD, environ_base=OTHER).status_code == 429
    result = app.test_cli_runner().invoke(
        args=["smstrack", "set-password", "owner@example.com", "--password-stdin"], input="a new password\n"
    )
    assert result.exit_code == 0, result.output
    assert "lockout" in result.output
    assert _try_login(app.test_client(), password="a new password", environ_base=OTHER).status_code == 302
