import datetime as dt

import pytest
from sqlalchemy import func, select, update

from conftest import click_id_of
from flask_smstrack.models import Click, Conversion


@pytest.fixture
def clicked(app, actions):
    """A campaign, a link, and one human click on it."""
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"])
    response = actions.click(link["code"])
    return {"key": key, "campaign": campaign, "link": link, "click_id": click_id_of(response)}


def _count(app, model):
    from wsgi import db

    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def _conversion(clicked, **fields):
    return {
        "type": "conversion",
        "click_id": clicked["click_id"],
        "event": "purchase",
        "revenue": "49.90",
        "currency": "USD",
        "order_id": "A-1001",
        **fields,
    }


def test_landing_ping_confirms_click(app, actions, clicked):
    response = actions.collect({"type": "landing", "click_id": clicked["click_id"]})
    assert response.status_code == 202
    assert response.json["confirmed"] is True
    assert actions.report(clicked["key"], clicked["campaign"]["id"])["human_confirmed"] == 1


def test_landing_ping_for_unknown_click(actions, clicked):
    response = actions.collect({"type": "landing", "click_id": "nosuchclick"})
    assert (response.status_code, response.json["confirmed"]) == (202, False)


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", "text/plain;charset=UTF-8"])
def test_conversion_is_attributed(app, actions, clicked, content_type):
    response = actions.collect(_conversion(clicked), content_type=content_type)
    assert response.status_code == 202
    assert response.json == {"status": "accepted", "attributed": True}
    report = actions.report(clicked["key"], clicked["campaign"]["id"])
    assert (report["conversions"], report["revenue"]) == (1, {"USD": "49.90"})
    from wsgi import db

    with app.app_context():
        conversion = db.session.execute(select(Conversion)).scalar_one()
        assert (conversion.source, conversion.trust) == ("snippet", "unverified")
        assert str(conversion.revenue) == "49.9000"


def test_revenue_as_json_number_stays_exact(app, actions, clicked):
    response = actions.collect('{"type":"conversion","click_id":"%s","revenue":19.99,"currency":"eur"}' % clicked["click_id"])
    assert response.status_code == 202
    report = actions.report(clicked["key"], clicked["campaign"]["id"])
    assert report["revenue"] == {"EUR": "19.99"}


def test_replayed_conversion_counts_once(app, actions, clicked):
    for _ in range(10):
        response = actions.collect(_conversion(clicked))
        # The answer never tells whether the order id was stored already.
        assert response.json == {"status": "accepted", "attributed": True}
    assert _count(app, Conversion) == 1
    report = actions.report(clicked["key"], clicked["campaign"]["id"])
    assert (report["conversions"], report["revenue"]) == (1, {"USD": "49.90"})


def test_same_order_id_other_event_is_another_conversion(app, actions, clicked):
    actions.collect(_conversion(clicked))
    actions.collect(_conversion(clicked, event="subscription", revenue="5"))
    assert _count(app, Conversion) == 2


def test_unknown_click_is_stored_unattributed(app, actions, clicked):
    response = actions.collect(_conversion(clicked, click_id="unknownclick123"))
    assert response.status_code == 202
    assert response.json["attributed"] is False
    report = actions.report(clicked["key"], clicked["campaign"]["id"])
    assert report["conversions"] == 0
    admin = actions.api_key("admin@example.com", admin=True)
    listed = actions.api("GET", "/conversions?attributed=false", admin).json["conversions"]
    assert [(c["order_id"], c["attributed"]) for c in listed] == [("A-1001", False)]


def test_click_outside_window_is_unattributed(app, actions, clicked):
    from wsgi import db

    with app.app_context():
        old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=31)
        db.session.execute(update(Click).values(created_at=old))
        db.session.commit()
    response = actions.collect(_conversion(clicked))
    assert response.json["attributed"] is False
    report = actions.report(clicked["key"], clicked["campaign"]["id"])
    assert (report["conversions"], report["unattributed_conversions"]) == (0, 1)


def test_server_cookie_is_the_fallback(app, actions, clicked):
    # The test client kept the HttpOnly smsclid cookie from the redirect.
    body = _conversion(clicked)
    del body["click_id"]
    response = actions.collect(body)
    assert response.json["attributed"] is True


BAD_BODIES = [
    ("not json", "_body"),
    ("[1, 2]", "_body"),
    ('{"type": "pageview"}', "type"),
    ('{"click_id": "abc"}', "type"),
    ('{"type": "landing"}', "click_id"),
    ('{"type": "landing", "click_id": "bad id!"}', "click_id"),
]

BAD_REVENUE = [
    ("-1", "revenue"),
    ("-0.01", "revenue"),
    ('"1e13"', "revenue"),
    ("1000000000.01", "revenue"),
    ('"forty"', "revenue"),
    ('"NaN"', "revenue"),
    ('"Infinity"', "revenue"),
    ("true", "revenue"),
    ("[5]", "revenue"),
    ('"1.23456"', "revenue"),
]


@pytest.mark.parametrize("raw,field", BAD_BODIES)
def test_malformed_bodies_get_400_naming_the_field(app, actions, clicked, raw, field):
    response = actions.collect(raw)
    assert response.status_code == 400
    assert field in response.json["errors"]
    assert _count(app, Conversion) == 0


@pytest.mark.parametrize("revenue,field", BAD_REVENUE)
def test_bad_revenue_is_refused(app, actions, clicked, revenue, field):
    raw = '{"type":"conversion","click_id":"%s","revenue":%s,"currency":"USD","order_id":"X"}' % (
        clicked["click_id"],
        revenue,
    )
    response = actions.collect(raw)
    assert response.status_code == 400, response.json
    assert list(response.json["errors"]) == [field]
    assert _count(app, Conversion) == 0


@pytest.mark.parametrize("currency", ["XYZ", "usdollar", "", "12", None])
def test_unknown_currency_is_refused(app, actions, clicked, currency):
    response = actions.collect(_conversion(clicked, currency=currency))
    assert response.status_code == 400
    assert "currency" in response.json["errors"]
    assert _count(app, Conversion) == 0


def test_oversized_payload_gets_413(app, actions, clicked):
    response = actions.collect(_conversion(clicked, order_id="x" * 5000))
    assert response.status_code == 413
    assert "_body" in response.json["errors"]
    assert _count(app, Conversion) == 0


def test_too_long_fields_are_refused(app, actions, clicked):
    response = actions.collect(_conversion(clicked, order_id="x" * 129, event="e" * 65))
    assert response.status_code == 400
    assert set(response.json["errors"]) == {"order_id", "event"}


def test_wrong_content_type_gets_415(actions, clicked):
    response = actions.collect(_conversion(clicked), content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


def test_unknown_keys_are_ignored(app, actions, clicked):
    response = actions.collect(_conversion(clicked, extra={"a": 1}, page="/thanks"))
    assert response.status_code == 202


def test_cors_preflight_and_headers(actions):
    response = actions.client.options(
        "/smstrack/collect",
        headers={"Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


@pytest.mark.parametrize("allowed", ["*", ["*"]])
def test_any_origin_never_gets_credentials(make_app, allowed):
    """With every origin allowed, a page on any site could otherwise read
    answers made with the visitor's cookies: it gets ``*`` and no credentials."""
    from conftest import Actions

    actions = Actions(make_app(SMSTRACK_ALLOWED_ORIGINS=allowed))
    body = {"type": "landing", "click_id": "abc"}
    for origin in ("https://evil.example.net", "null", None):
        headers = {"Origin": origin} if origin else {}
        answers = [
            actions.collect(body, headers=headers),
            actions.collect("{", headers=headers),
            actions.client.options("/smstrack/collect", headers={**headers, "Access-Control-Request-Method": "POST"}),
        ]
        for response in answers:
            assert response.headers["Access-Control-Allow-Origin"] == "*", origin
            assert "Access-Control-Allow-Credentials" not in response.headers, origin
        assert [r.status_code for r in answers] == [202, 400, 204]


def test_allowed_origins_restrict_the_collector(make_app):
    from conftest import Actions

    actions = Actions(make_app(SMSTRACK_ALLOWED_ORIGINS=["https://shop.example.com"]))
    body = {"type": "landing", "click_id": "abc"}
    ok = actions.collect(body, headers={"Origin": "https://shop.example.com"})
    assert (ok.status_code, ok.headers["Access-Control-Allow-Origin"]) == (202, "https://shop.example.com")
    assert ok.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in ok.headers["Vary"]
    refused = actions.collect(body, headers={"Origin": "https://evil.example.net"})
    assert refused.status_code == 403
    assert "Origin" in refused.json["errors"]
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert "Access-Control-Allow-Credentials" not in refused.headers
    assert "Origin" in refused.headers["Vary"]
    # Servers and tests post without an Origin: accepted, with no CORS headers.
    direct = actions.collect(body)
    assert direct.status_code == 202
    assert "Access-Control-Allow-Origin" not in direct.headers


def test_snippet_is_served_with_etag(client):
    response = client.get("/smstrack/t.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert "max-age" in response.headers["Cache-Control"]
    etag = response.headers["ETag"]
    again = client.get("/smstrack/t.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
