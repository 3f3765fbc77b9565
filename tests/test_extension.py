"""flask-smstrack mounted in an existing app: the shop in ``tests/hostapp``,
with its own ``db``, Flask-Login users and ``CSRFProtect``."""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from marshmallow import ValidationError
from sqlalchemy import func, inspect, select

import hostapp
from conftest import IPHONE, _empty_tables, _host_config
from flask_smstrack import SmsTrack
from flask_smstrack.auth import create_api_key, create_user
from flask_smstrack.models import Click, Conversion

_CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@pytest.fixture
def make_host(migrated, tmp_path):
    """Build shop apps on the test database; each is torn down after the test."""
    _empty_tables(migrated)
    apps = []

    def make(**config):
        app = hostapp.create_app(migrated, **{**_host_config(tmp_path), **config})
        apps.append(app)
        return app

    with make().app_context():
        hostapp.create_tables()
        hostapp.delete_rows()
    yield make
    for app in apps:
        with app.app_context():
            hostapp.db.engine.dispose()


@pytest.fixture
def host(make_host):
    return make_host()


class Shop:
    """What people do in the shop: staff log in, visitors click and buy."""

    def __init__(self, app) -> None:
        self.app = app

    def user(self, email, password="correct horse", staff=False, superuser=False) -> int:
        with self.app.app_context():
            user = hostapp.HostUser(email=email, staff=staff, superuser=superuser)
            user.set_password(password)
            hostapp.db.session.add(user)
            hostapp.db.session.commit()
            return user.id

    def api_key(self, user_id: int, is_admin=False) -> str:
        with self.app.app_context():
            key, _ = create_api_key(str(user_id), is_admin=is_admin)
            return key

    def login(self, email, password="correct horse"):
        """A client logged in through the shop's own login form."""
        client = self.app.test_client()
        response = client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": csrf_token(client, "/login")},
        )
        assert response.status_code == 302, response.text
        return client

    def api(self, client, method, path, key=None, json=None, **kw):
        headers = kw.pop("headers", {})
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return client.open(f"/smstrack/api/v1{path}", method=method, json=json, headers=headers, **kw)

    def campaign(self, key, name="Spring sale") -> dict:
        body = {"name": name, "currency": "USD", "cost": "10.00", "sent": 100}
        response = self.api(self.app.test_client(), "POST", "/campaigns", key, json=body)
        assert response.status_code == 201, response.json
        return response.json

    def link(self, key, campaign_id) -> dict:
        body = {"destination_url": "https://shop.example.com/spring?src=sms"}
        response = self.api(self.app.test_client(), "POST", f"/campaigns/{campaign_id}/links", key, json=body)
        assert response.status_code == 201, response.json
        return response.json

    def report(self, key, campaign_id) -> dict:
        response = self.api(self.app.test_client(), "GET", f"/campaigns/{campaign_id}/report", key)
        assert response.status_code == 200, response.json
        return response.json

    def visit(self, code, client=None, prefix="/s"):
        """A phone follows the SMS link; returns its client and the click id."""
        client = client or self.app.test_client()
        response = client.get(
            f"{prefix}/{code}", headers={"User-Agent": IPHONE}, environ_base={"REMOTE_ADDR": "81.2.69.160"}
        )
        assert response.status_code == 302
        return client, parse_qs(urlsplit(response.headers["Location"]).query)["smsclid"][0]


def csrf_token(client, page) -> str:
    """The token a real form carries: read from the rendered page."""
    response = client.get(page)
    assert response.status_code == 200
    return _CSRF_FIELD.search(response.text).group(1)


def _conversions(app) -> list[Conversion]:
    with app.app_context():
        return hostapp.db.session.execute(select(Conversion).order_by(Conversion.id)).scalars().all()


@pytest.fixture
def shop(host) -> Shop:
    return Shop(host)


@pytest.fixture
def staff_link(shop):
    """A staff user with an API key, a campaign and a link."""
    user_id = shop.user("alice@shop.example", staff=True)
    key = shop.api_key(user_id)
    campaign = shop.campaign(key)
    link = shop.link(key, campaign["id"])
    return {"user_id": user_id, "key": key, "campaign": campaign, "link": link}


# -- mounting -------------------------------------------------------------


def test_mount_uses_host_db(host):
    assert host.extensions["smstrack"].db is hostapp.db
    assert host.extensions["sqlalchemy"] is hostapp.db
    assert host.extensions["smstrack"].ext is hostapp.smstrack
    with host.app_context():
        tables = set(inspect(hostapp.db.engine).get_table_names())
    assert {"host_users", "host_orders", "smstrack_campaigns", "smstrack_clicks"} <= tables
    # The host's own create_all() and autogenerated migrations never see smstrack tables.
    assert all(name.startswith("host_") for name in hostapp.db.metadata.tables)
    rules = {rule.rule for rule in host.url_map.iter_rules()}
    assert {"/s/<code>", "/smstrack/collect", "/smstrack/t.js", "/smstrack/api/v1/campaigns", "/login"} <= rules
    assert "smstrack" in host.cli.commands


def test_init_without_db_says_how_to_fix():
    with pytest.raises(RuntimeError, match=r"db=db"):
        SmsTrack(Flask(__name__))


def test_init_before_db_init_app_says_how_to_fix():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    db = SQLAlchemy()
    ext = SmsTrack(db=db)
    with pytest.raises(RuntimeError, match=r"call db\.init_app\(app\) before smstrack\.init_app\(app\)"):
        ext.init_app(app)
    assert "smstrack" not in app.extensions
    # Done in the right order, the same app and extension work.
    db.init_app(app)
    ext.init_app(app)
    assert app.extensions["smstrack"].db is db
    with pytest.raises(RuntimeError, match=r"already set up on this app"):
        ext.init_app(app)
    with app.app_context():
        db.engine.dispose()


def test_host_config_wins_over_defaults(make_host):
    app = make_host(SMSTRACK_LINK_PREFIX="/go")
    assert app.config["SMSTRACK_LINK_PREFIX"] == "/go"
    assert app.config["SMSTRACK_COOKIE_NAME"] == "smsclid"  # a default, filled in
    shop = Shop(app)
    key = shop.api_key(shop.user("alice@shop.example", staff=True))
    link = shop.link(key, shop.campaign(key)["id"])
    assert link["short_url"] == f"http://localhost/go/{link['code']}"
    client = app.test_client()
    assert client.get(f"/go/{link['code']}").status_code == 302
    assert client.get(f"/s/{link['code']}").status_code == 404


def test_two_apps_one_extension(make_host):
    a = make_host()
    b = make_host(SMSTRACK_LINK_PREFIX="/go", SMSTRACK_COOKIE_NAME="shopclid")
    assert a.extensions["smstrack"] is not b.extensions["smstrack"]
    assert a.extensions["smstrack"].ext is b.extensions["smstrack"].ext is hostapp.smstrack
    assert (a.config["SMSTRACK_LINK_PREFIX"], b.config["SMSTRACK_LINK_PREFIX"]) == ("/s", "/go")

    shop_a, shop_b = Shop(a), Shop(b)
    key = shop_a.api_key(shop_a.user("alice@shop.example", staff=True))
    campaign = shop_a.campaign(key)
    link = shop_b.link(key, campaign["id"])
    assert link["short_url"] == f"http://localhost/go/{link['code']}"

    client_a, click_a = shop_a.visit(link["code"])
    assert client_a.get_cookie("smsclid").value == click_a
    assert client_a.get(f"/go/{link['code']}").status_code == 404
    client_b, click_b = shop_b.visit(link["code"], prefix="/go")
    assert client_b.get_cookie("shopclid").value == click_b
    assert client_b.get_cookie("smsclid") is None
    assert client_b.get(f"/s/{link['code']}").status_code == 404
    assert client_b.get("/whoami-click").text == click_b
    assert shop_a.report(key, campaign["id"])["clicks"] == 2


# -- CSRF -----------------------------------------------------------------


def test_collector_is_exempt_from_host_csrf(shop, staff_link):
    client, click_id = shop.visit(staff_link["link"]["code"])
    response = client.post(
        "/smstrack/collect", data=json.dumps({"type": "landing", "click_id": click_id}), content_type="text/plain"
    )
    assert response.status_code == 202
    assert response.json["confirmed"] is True
    # API clients carry a key, not a CSRF token.
    assert shop.api(client, "POST", "/campaigns", staff_link["key"], json={"name": "B", "currency": "USD"}).status_code == 201
    # The host's own forms are still protected.
    assert client.post("/checkout", data={"total": "49.90"}).status_code == 400
    assert client.post("/login", data={"email": "alice@shop.example", "password": "correct horse"}).status_code == 400
    assert _conversions(shop.app) == []


def test_collector_exempt_when_csrf_is_set_up_after_smstrack(migrated, tmp_path):
    """Extensions are set up in any order; the collector must not depend on it."""
    _empty_tables(migrated)
    app = Flask(__name__)
    app.config.update(SECRET_KEY="s", SQLALCHEMY_DATABASE_URI=migrated, SMSTRACK_SPOOL_DIR=str(tmp_path))
    hostapp.db.init_app(app)
    hostapp.smstrack.init_app(app)
    CSRFProtect(app)
    try:
        response = app.test_client().post(
            "/smstrack/collect", data=json.dumps({"type": "landing", "click_id": "abc"}), content_type="text/plain"
        )
        assert response.status_code == 202, response.text
    finally:
        with app.app_context():
            hostapp.db.engine.dispose()


def test_session_api_writes_need_csrf_token(shop, staff_link):
    """A logged-in session is a cookie: without a token, another site could post with it."""
    client = shop.login("alice@shop.example")
    body = {"name": "Forged", "currency": "USD"}
    response = shop.api(client, "POST", "/campaigns", json=body)
    assert response.status_code == 400, response.json
    token = csrf_token(client, "/checkout")
    response = shop.api(client, "POST", "/campaigns", json=body, headers={"X-CSRFToken": token})
    assert response.status_code == 201, response.json


# -- the shop's own flow --------------------------------------------------


def test_click_checkout_report(shop, staff_link):
    app, key, campaign = shop.app, staff_link["key"], staff_link["campaign"]
    assert staff_link["link"]["short_url"] == f"http://localhost/s/{staff_link['link']['code']}"

    visitor, click_id = shop.visit(staff_link["link"]["code"])
    cookie = visitor.get_cookie("smsclid")
    assert cookie.value == click_id and cookie.http_only
    assert visitor.get("/whoami-click").text == click_id
    assert app.test_client().get("/whoami-click").text == "none"

    token = csrf_token(visitor, "/checkout")
    response = visitor.post("/checkout", data={"total": "49.90", "csrf_token": token})
    assert response.status_code == 201, response.text
    assert (response.json["attributed"], response.json["duplicate"]) == (True, False)
    order_id = response.json["order_id"]

    # The payment provider confirms the same order again: counted once.
    with app.test_request_context(headers={"Cookie": f"smsclid={click_id}"}):
        again = hostapp.smstrack.record_conversion(
            event="purchase", revenue="49.90", currency="USD", order_id=str(order_id)
        )
        assert again.duplicate is True
        assert again.conversion.id == response.json["conversion_id"]

    (conversion,) = _conversions(app)
    with app.app_context():
        click = hostapp.db.session.execute(select(Click).where(Click.click_id == click_id)).scalar_one()
    assert conversion.click_pk == click.id
    assert conversion.campaign_id == campaign["id"]
    assert (conversion.source, conversion.trust, conversion.order_id) == ("server", "verified", str(order_id))
    report = shop.report(key, campaign["id"])
    assert (report["clicks"], report["unique_clicks"]) == (1, 1)
    assert (report["conversions"], report["revenue"]) == (1, {"USD": "49.90"})
    assert report["profit"] == "39.90"


def test_checkout_without_csrf_check(make_host):
    app = make_host(WTF_CSRF_ENABLED=False)
    shop = Shop(app)
    key = shop.api_key(shop.user("alice@shop.example", staff=True))
    campaign = shop.campaign(key)
    visitor, _ = shop.visit(shop.link(key, campaign["id"])["code"])
    response = visitor.post("/checkout", data={"total": "12.5"})
    assert (response.status_code, response.json["attributed"]) == (201, True)
    assert shop.report(key, campaign["id"])["revenue"] == {"USD": "12.50"}


def test_landing_url_click_id_without_cookie(shop, staff_link):
    """Cross-domain visitors bring the click id in the URL, not the cookie."""
    _, click_id = shop.visit(staff_link["link"]["code"])
    fresh = shop.app.test_client()
    assert fresh.get(f"/whoami-click?smsclid={click_id}").text == click_id
    assert fresh.get("/whoami-click?smsclid=unknown").text == "none"


def test_beacon_without_click_id_uses_server_cookie(shop, staff_link):
    visitor, click_id = shop.visit(staff_link["link"]["code"])
    beacon = {"type": "conversion", "event": "signup", "order_id": "N-1"}
    response = visitor.post("/smstrack/collect", data=json.dumps(beacon), content_type="text/plain")
    assert response.status_code == 202
    assert response.json == {"status": "accepted", "attributed": True}
    (conversion,) = _conversions(shop.app)
    with shop.app.app_context():
        click = hostapp.db.session.execute(select(Click).where(Click.click_id == click_id)).scalar_one()
    assert conversion.click_pk == click.id
    assert (conversion.source, conversion.trust) == ("snippet", "unverified")
    # Without the cookie the same beacon is kept, unattributed.
    stranger = shop.app.test_client()
    response = stranger.post(
        "/smstrack/collect", data=json.dumps(dict(beacon, order_id="N-2")), content_type="text/plain"
    )
    assert (response.status_code, response.json["attributed"]) == (202, False)
    assert shop.report(staff_link["key"], staff_link["campaign"]["id"])["conversions"] == 1


def test_float_revenue_is_refused(shop, staff_link):
    visitor, click_id = shop.visit(staff_link["link"]["code"])
    with shop.app.test_request_context(headers={"Cookie": f"smsclid={click_id}"}):
        with pytest.raises(ValidationError) as exc:
            hostapp.smstrack.record_conversion(revenue=1.5, currency="USD", order_id="F-1")
    assert "revenue" in exc.value.messages
    assert _conversions(shop.app) == []


# -- access ---------------------------------------------------------------


def test_staff_session_sees_own_campaigns(shop, staff_link):
    bob = shop.user("bob@shop.example", staff=True)
    bobs = shop.campaign(shop.api_key(bob), name="Bob's sale")

    alice = shop.login("alice@shop.example")
    response = shop.api(alice, "GET", "/campaigns")
    assert response.status_code == 200
    assert [c["id"] for c in response.json["campaigns"]] == [staff_link["campaign"]["id"]]
    assert response.json["campaigns"][0]["owner_id"] == str(staff_link["user_id"])
    assert shop.api(alice, "GET", f"/campaigns/{staff_link['campaign']['id']}/report").status_code == 200

    bob_client = shop.login("bob@shop.example")
    response = shop.api(bob_client, "GET", f"/campaigns/{staff_link['campaign']['id']}/report")
    assert response.status_code == 404
    assert [c["id"] for c in shop.api(bob_client, "GET", "/campaigns").json["campaigns"]] == [bobs["id"]]


def test_superuser_session_sees_every_campaign(shop, staff_link):
    shop.user("root@shop.example", staff=True, superuser=True)
    bob = shop.user("bob@shop.example", staff=True)
    bobs = shop.campaign(shop.api_key(bob), name="Bob's sale")
    client = shop.login("root@shop.example")
    ids = {c["id"] for c in shop.api(client, "GET", "/campaigns").json["campaigns"]}
    assert ids == {staff_link["campaign"]["id"], bobs["id"]}


def test_non_staff_session_is_refused(shop, staff_link):
    shop.user("carol@shop.example")
    client = shop.login("carol@shop.example")
    response = shop.api(client, "GET", "/campaigns")
    assert response.status_code == 401
    assert "Authorization" in response.json["errors"]
    assert client.get("/smstrack/").status_code == 403
    assert shop.api(shop.app.test_client(), "GET", "/campaigns").status_code == 401


def test_dashboard_uses_host_login(shop, staff_link):
    response = shop.app.test_client().get("/smstrack/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    client = shop.login("alice@shop.example")
    response = client.get("/smstrack/")
    assert response.status_code == 200
    assert "Spring sale" in response.text


def test_builtin_login_is_off_when_host_has_login(shop, staff_link):
    """The host's users and login view are the only ones: a built-in smstrack
    user must not be able to log in and be loaded as the host user of the same id."""
    with shop.app.app_context():
        create_user("intruder@example.com", "intruder-password")
        assert hostapp.db.session.execute(select(func.count()).select_from(hostapp.HostUser)).scalar_one() == 1
    client = shop.app.test_client()
    assert client.get("/smstrack/login").status_code == 404
    client.post(
        "/smstrack/login",
        data={
            "email": "intruder@example.com",
            "password": "intruder-password",
            "csrf_token": _CSRF_FIELD.search(client.get("/login").text).group(1),
        },
    )
    assert shop.api(client, "GET", "/campaigns").status_code == 401


def test_builtin_user_is_never_a_host_user_when_login_is_set_up_late(make_host):
    """The shop sets up its LoginManager after smstrack: the built-in login
    must not stay live, and a built-in user (id 1) must never be loaded by
    the shop's user loader as the shop's user 1 (a superuser here)."""
    app = make_host(login_after_smstrack=True)
    shop = Shop(app)
    owner_id = shop.user("root@shop.example", staff=True, superuser=True)
    shop.campaign(shop.api_key(owner_id), name="Root sale")
    with app.app_context():
        intruder = create_user("intruder@example.com", "intruder-password")
        assert (intruder.id, owner_id) == (1, 1)
    client = app.test_client()
    assert client.get("/smstrack/login").status_code == 404
    response = client.post(
        "/smstrack/login",
        data={"email": "intruder@example.com", "password": "intruder-password", "csrf_token": csrf_token(client, "/login")},
    )
    assert response.status_code == 404
    assert shop.api(client, "GET", "/campaigns").status_code == 401
    response = client.get("/smstrack/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")
    # Even a built-in session id is not one the shop's loader takes.
    with app.app_context():
        assert app.login_manager._user_callback(intruder.get_id()) is None
    # The shop's own users still get in.
    assert "Root sale" in shop.login("root@shop.example").get("/smstrack/").text


def test_builtin_login_stays_on_without_a_host_login(migrated, tmp_path):
    """Without a LoginManager of the host's, the built-in users log in, and
    their session ids are namespaced and versioned."""
    _empty_tables(migrated)
    app = Flask(__name__)
    app.config.update(SECRET_KEY="s", SQLALCHEMY_DATABASE_URI=migrated, **_host_config(tmp_path))
    hostapp.db.init_app(app)
    SmsTrack(app, db=hostapp.db)
    try:
        with app.app_context():
            user = create_user("owner@example.com", "correct horse")
            assert user.get_id() == f"smstrack:{user.id}:0"
        client = app.test_client()
        page = client.get("/smstrack/login")
        assert page.status_code == 200
        token = _CSRF_FIELD.search(page.text).group(1)
        response = client.post("/smstrack/login", data={"email": "owner@example.com", "password": "correct horse", "csrf_token": token})
        assert response.status_code == 302
        assert client.get("/smstrack/").status_code == 200
    finally:
        with app.app_context():
            hostapp.db.engine.dispose()


def test_host_users_get_api_keys(shop, staff_link):
    runner = shop.app.test_cli_runner()
    bob = shop.user("bob@shop.example", staff=True)
    result = runner.invoke(args=["smstrack", "create-api-key", "--owner-id", str(bob), "--name", "bob's server"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[0]
    bobs = shop.campaign(key, name="Bob's sale")
    assert bobs["owner_id"] == str(bob)
    ids = [c["id"] for c in shop.api(shop.app.test_client(), "GET", "/campaigns", key).json["campaigns"]]
    assert ids == [bobs["id"]]
    listed = runner.invoke(args=["smstrack", "list-api-keys", "--owner-id", str(bob)])
    assert f"{key[:11]}...  active" in listed.output and "bob's server" in listed.output
    admin = runner.invoke(args=["smstrack", "create-api-key", "--owner-id", "99", "--admin"]).stdout.splitlines()[0]
    assert len(shop.api(shop.app.test_client(), "GET", "/campaigns", admin).json["campaigns"]) == 2
    for args in ([], ["alice@shop.example", "--owner-id", "1"], ["--owner-id", " "]):
        assert runner.invoke(args=["smstrack", "create-api-key", *args]).exit_code == 2, args

    # A logged-in staff user makes their own key on the dashboard.
    alice = shop.login("alice@shop.example")
    page = alice.get("/smstrack/account/api-keys")
    assert page.status_code == 200 and staff_link["key"][:11] in page.text
    created = alice.post("/smstrack/account/api-keys", data={"csrf_token": _CSRF_FIELD.search(page.text).group(1)})
    assert created.status_code == 201
    new_key = re.search(r'id="st-new-key" class="st-copy-text">(smst_[^<]+)<', created.text).group(1)
    ids = [c["id"] for c in shop.api(shop.app.test_client(), "GET", "/campaigns", new_key).json["campaigns"]]
    assert ids == [staff_link["campaign"]["id"]]
    # Not staff: no keys page.
    shop.user("carol@shop.example")
    assert shop.login("carol@shop.example").get("/smstrack/account/api-keys").status_code == 403
