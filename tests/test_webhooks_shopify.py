"""Shopify's webhook: an order is a verified sale on the campaign whose click
the cart carried (a note attribute, or the landing page's ``smsclid``),
counted once however often Shopify delivers it; a refund is counted once
per refund id; anything not signed with the shop's secret changes nothing."""
import json
from decimal import Decimal

import pytest
from flask import Flask
from flask_wtf.csrf import CSRFProtect

from conftest import _empty_tables, clicked_campaign, sale_counts, stored_conversions
from flask_smstrack.models import NO_OWNER
from shopify_events import ORDER_ID, PATH, SECRET, headers, order, refund, sign


@pytest.fixture
def app(make_app):
    return make_app(SMSTRACK_SHOPIFY_WEBHOOK_SECRET=SECRET)


@pytest.fixture
def shop(app, actions):
    return clicked_campaign(actions)


def _post(client, topic: str, body: bytes, **kw):
    return client.post(PATH, data=body, headers=headers(topic, body, **kw))


def test_an_order_with_the_click_in_its_attributes_is_a_verified_sale(app, client, actions, shop):
    response = _post(client, "orders/create", order("199.00", click_id=shop["click_id"]))
    assert response.status_code == 200, response.json
    assert (response.json["status"], response.json["attributed"]) == ("recorded", True)
    [row] = stored_conversions(app)
    assert (row.source, row.trust, row.order_id, row.revenue, row.currency) == (
        "shopify", "verified", str(ORDER_ID), Decimal("199.00"), "USD")
    assert row.campaign_id == shop["campaign"]["id"]
    report = actions.report(shop["key"], shop["campaign"]["id"])
    assert (report["conversions"], report["revenue"]) == (1, {"USD": "199.00"})


def test_the_landing_page_carries_the_click_too(app, client, actions, shop):
    landing = f"/products/linen-shirt?utm_source=sms&smsclid={shop['click_id']}"
    assert _post(client, "orders/create", order("5000", "JPY", landing_site=landing)).json["attributed"] is True
    [row] = stored_conversions(app)
    assert (row.revenue, row.currency, row.campaign_id) == (Decimal(5000), "JPY", shop["campaign"]["id"])
    assert actions.report(shop["key"], shop["campaign"]["id"])["revenue"] == {"JPY": "5000.00"}


def test_retries_and_the_paid_topic_are_the_same_sale(app, client, actions, shop):
    body = order("199.00", click_id=shop["click_id"])
    answers = [_post(client, "orders/create", body), _post(client, "orders/create", body),
               _post(client, "orders/paid", body, webhook_id="0c8a44d6-11e3-4a1b-a1f6-3f0c3e0a9d11")]
    assert [a.json["duplicate"] for a in answers] == [False, True, True]
    assert sale_counts(app) == (1, 0)
    assert actions.report(shop["key"], shop["campaign"]["id"])["revenue"] == {"USD": "199.00"}


def test_an_order_without_a_click_is_stored_unattributed(app, client):
    assert _post(client, "orders/create", order("25.00")).json["attributed"] is False
    [row] = stored_conversions(app)
    assert (row.owner_id, row.campaign_id, row.trust) == (NO_OWNER, None, "verified")


def test_refunds_count_once_per_refund_id(app, client, actions, shop):
    _post(client, "orders/create", order("199.00", click_id=shop["click_id"]))
    first = refund(890088186047892319, amount="20.00", lines=[(18.0, 2.0)])
    answer = _post(client, "refunds/create", first)
    assert (answer.status_code, answer.json["status"], answer.json["amount"]) == (200, "refunded", "20.00")
    assert _post(client, "refunds/create", first).json["duplicate"] is True
    # A refund without a transaction (no money through Shopify): its lines.
    second = refund(890088186047892320, amount=None, lines=[(45.5, 4.5)])
    assert _post(client, "refunds/create", second).json["amount"] == "50.00"
    report = actions.report(shop["key"], shop["campaign"]["id"])
    assert (report["refunded"], report["net_revenue"]) == ({"USD": "70.00"}, "129.00")
    assert sale_counts(app) == (1, 2)


def test_a_refund_never_takes_more_than_is_left(app, client, actions, shop):
    _post(client, "orders/create", order("30.00", click_id=shop["click_id"]))
    assert _post(client, "refunds/create", refund(1, amount="20.00")).json["amount"] == "20.00"
    assert _post(client, "refunds/create", refund(2, amount="20.00")).json["amount"] == "10.00"
    assert "ignored" in _post(client, "refunds/create", refund(3, amount="5.00")).json
    assert actions.report(shop["key"], shop["campaign"]["id"])["refunded"] == {"USD": "30.00"}


@pytest.mark.parametrize("how", ["other secret", "tampered", "missing", "not base64", "unset"])
def test_an_unsigned_webhook_changes_nothing(make_app, shop, how):
    app = make_app(SMSTRACK_SHOPIFY_WEBHOOK_SECRET=None if how == "unset" else SECRET)
    body = order("199.00", click_id=shop["click_id"])
    signature = {"other secret": sign(body, "shpss_another_app"), "tampered": sign(body), "missing": None,
                 "not base64": "é not base64 ✓", "unset": sign(body)}[how]
    sent = body.replace(b'"total_price": "199.00"', b'"total_price": "999.00"') if how == "tampered" else body
    assert sent != body or how != "tampered"
    hdrs = headers("orders/create", sent, signature=None)
    if signature is not None:
        hdrs["X-Shopify-Hmac-Sha256"] = signature.encode().decode("latin-1")
    response = app.test_client().post(PATH, data=sent, headers=hdrs)
    assert response.status_code == 403, response.json
    assert list(response.json["errors"]) == ["X-Shopify-Hmac-Sha256"]
    assert sale_counts(app) == (0, 0)


def test_other_topics_are_ignored(app, client):
    body = json.dumps({"id": 706405506930370084, "email": "bob@example.com"}).encode()
    response = _post(client, "customers/create", body)
    assert (response.status_code, "customers/create" in response.json["ignored"]) == (200, True)
    assert sale_counts(app) == (0, 0)


@pytest.mark.parametrize(("change", "field"), [
    ((b'"total_price": "199.00"', b'"total_price": "lots"'), "total_price"),
    ((b'"currency": "USD"', b'"currency": "ZZZ"'), "currency"),
    ((b'"note_attributes": [', b'"note_attributes": 3, "x": ['), "note_attributes"),
])
def test_a_bad_field_is_a_400_naming_it(app, client, shop, change, field):
    body = order("199.00", click_id=shop["click_id"]).replace(*change)
    response = _post(client, "orders/create", body)
    assert response.status_code == 400, response.json
    assert list(response.json["errors"]) == [field]
    assert sale_counts(app) == (0, 0)


def test_a_body_over_the_limit_is_refused(app, client):
    body = order("1.00").replace(b'"note": null', b'"note": "' + b"x" * 600_000 + b'"')
    assert _post(client, "orders/create", body).status_code == 413
    assert sale_counts(app) == (0, 0)


def test_shop_webhooks_are_exempt_from_the_hosts_csrf(migrated, tmp_path):
    import hostapp
    from stripe_events import SECRET as STRIPE_SECRET
    from stripe_events import checkout_session, event
    from stripe_events import sign as stripe_sign

    _empty_tables(migrated)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="s", SQLALCHEMY_DATABASE_URI=migrated, SMSTRACK_SPOOL_DIR=str(tmp_path),
        SMSTRACK_SHOPIFY_WEBHOOK_SECRET=SECRET, SMSTRACK_STRIPE_WEBHOOK_SECRET=STRIPE_SECRET,
    )
    hostapp.db.init_app(app)
    hostapp.smstrack.init_app(app)
    CSRFProtect(app)
    try:
        client = app.test_client()
        assert _post(client, "orders/create", order("9.00")).status_code == 200
        body = event("checkout.session.completed", checkout_session(900))
        reply = client.post("/smstrack/webhooks/stripe", data=body, headers={"Stripe-Signature": stripe_sign(body)})
        assert reply.status_code == 200, reply.json
    finally:
        with app.app_context():
            hostapp.db.engine.dispose()
