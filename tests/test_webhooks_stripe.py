"""Stripe's webhook: paid Checkout Sessions and PaymentIntents are verified
sales on the clicked campaign, counted once per payment, in the currency's
own unit; refunded charges are refunds, counted once however often Stripe
tells; anything not signed with the endpoint's secret changes nothing."""
import sys
import time
from decimal import Decimal

import pytest
from sqlalchemy import select

from conftest import clicked_campaign, sale_counts, stored_conversions
from flask_smstrack.integrations.stripe import from_minor_units
from flask_smstrack.models import NO_OWNER, Refund
from stripe_events import PATH, SECRET, charge_refunded, checkout_session, event, payment_intent, sign

PI = "pi_3QZ8aB2eZvKYlo2C1a2b3c4d"


@pytest.fixture
def app(make_app):
    return make_app(SMSTRACK_STRIPE_WEBHOOK_SECRET=SECRET)


@pytest.fixture
def shop(app, actions):
    """A campaign of shop@example.com, a link, and one click on it."""
    return clicked_campaign(actions)


def _post(client, body: bytes, signature: str | None = "sign"):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = sign(body) if signature == "sign" else signature
    return client.post(PATH, data=body, headers=headers)


def _user_id(app, email: str) -> str:
    from flask_smstrack.auth import find_user

    with app.app_context():
        return str(find_user(email).id)


@pytest.mark.parametrize(("amount", "currency", "expected"), [
    (4990, "usd", "49.90"), (5000, "jpy", "5000"), (120000, "krw", "120000"), (1500, "kwd", "1.500"),
    (50000, "isk", "500.00"), (1, "eur", "0.01"),
])
def test_amounts_in_the_currencys_minor_unit(amount, currency, expected):
    assert from_minor_units(amount, currency) == Decimal(expected)
    assert str(from_minor_units(amount, currency)) == expected


def test_a_paid_checkout_session_is_a_verified_sale_of_the_clicked_campaign(app, client, actions, shop):
    body = event("checkout.session.completed", checkout_session(4990, client_reference_id=shop["click_id"]))
    response = _post(client, body)
    assert response.status_code == 200, response.json
    assert (response.json["status"], response.json["attributed"], response.json["duplicate"]) == ("recorded", True, False)
    [row] = stored_conversions(app)
    assert (row.source, row.trust, row.event, row.order_id) == ("stripe", "verified", "purchase", PI)
    assert (row.revenue, row.currency, row.campaign_id) == (Decimal("49.90"), "USD", shop["campaign"]["id"])
    assert row.owner_id == _user_id(app, "shop@example.com")
    report = actions.report(shop["key"], shop["campaign"]["id"])
    assert (report["conversions"], report["revenue"]) == (1, {"USD": "49.90"})


def test_yen_has_no_minor_unit(app, client, actions, shop):
    body = event("payment_intent.succeeded", payment_intent(5000, "jpy", metadata={"smsclid": shop["click_id"]}))
    assert _post(client, body).status_code == 200
    [row] = stored_conversions(app)
    assert (row.revenue, row.currency) == (Decimal(5000), "JPY")
    assert actions.report(shop["key"], shop["campaign"]["id"])["revenue"] == {"JPY": "5000.00"}


@pytest.mark.parametrize("checkout_first", [True, False])
def test_both_events_of_one_payment_are_one_sale(app, client, actions, shop, checkout_first):
    """Checkout Session (with the click id) and its PaymentIntent (without
    one, as Checkout makes it), in either order: one attributed sale."""
    session = event("checkout.session.completed", checkout_session(4990, client_reference_id=shop["click_id"]),
                    "evt_1")
    intent = event("payment_intent.succeeded", payment_intent(4990), "evt_2")
    answers = [_post(client, b) for b in ((session, intent) if checkout_first else (intent, session))]
    assert [a.status_code for a in answers] == [200, 200]
    [row] = stored_conversions(app)
    assert (row.order_id, row.campaign_id, row.revenue) == (PI, shop["campaign"]["id"], Decimal("49.90"))
    report = actions.report(shop["key"], shop["campaign"]["id"])
    assert (report["conversions"], report["revenue"]) == (1, {"USD": "49.90"})


def test_both_events_stored_at_the_same_moment_are_one_sale(app, client, actions, shop, monkeypatch):
    """The PaymentIntent's event (no click id) looked for its sale just
    before the Checkout Session's event stored it: it is stored unattributed
    and then folds into the attributed sale, as if it had come second."""
    from flask_smstrack.integrations import sales

    session = event("checkout.session.completed", checkout_session(4990, client_reference_id=shop["click_id"]),
                    "evt_1")
    assert _post(client, session).status_code == 200
    monkeypatch.setattr(sales, "_sale", lambda *args, **kwargs: None)  # the look that came too early
    answer = _post(client, event("payment_intent.succeeded", payment_intent(4990), "evt_2"))
    assert answer.status_code == 200
    [row] = stored_conversions(app)
    assert (row.order_id, row.campaign_id, row.revenue) == (PI, shop["campaign"]["id"], Decimal("49.90"))
    assert answer.json == {"status": "recorded", "conversion_id": row.id, "attributed": True, "duplicate": True}
    report = actions.report(shop["key"], shop["campaign"]["id"])
    assert (report["conversions"], report["revenue"]) == (1, {"USD": "49.90"})


def test_both_events_with_the_click_id_are_one_sale(app, client, actions, shop):
    meta = {"smsclid": shop["click_id"]}
    assert _post(client, event("payment_intent.succeeded", payment_intent(4990, metadata=meta))).status_code == 200
    again = _post(client, event("checkout.session.completed", checkout_session(4990, metadata=meta)))
    assert again.json["duplicate"] is True
    assert sale_counts(app) == (1, 0)


def test_a_redelivered_event_is_recorded_once(app, client, actions, shop):
    body = event("checkout.session.completed", checkout_session(4990, client_reference_id=shop["click_id"]))
    first, second = _post(client, body), _post(client, body)
    assert (first.json["duplicate"], second.json["duplicate"]) == (False, True)
    assert first.json["conversion_id"] == second.json["conversion_id"]
    assert actions.report(shop["key"], shop["campaign"]["id"])["revenue"] == {"USD": "49.90"}


def test_a_sale_without_a_click_is_stored_unattributed(app, client):
    body = event("checkout.session.completed", checkout_session(1999, client_reference_id="customer-42"))
    response = _post(client, body)
    assert (response.status_code, response.json["attributed"]) == (200, False)
    [row] = stored_conversions(app)
    assert (row.owner_id, row.campaign_id, row.trust, row.revenue) == (NO_OWNER, None, "verified", Decimal("19.99"))
    # Its PaymentIntent is the same sale.
    assert _post(client, event("payment_intent.succeeded", payment_intent(1999))).json["duplicate"] is True
    assert sale_counts(app) == (1, 0)


@pytest.mark.parametrize("how", ["other secret", "tampered", "missing", "stale", "not a signature", "unset"])
def test_an_unsigned_event_changes_nothing(make_app, shop, how):
    app = make_app(SMSTRACK_STRIPE_WEBHOOK_SECRET=None if how == "unset" else SECRET)
    client = app.test_client()
    body = event("checkout.session.completed", checkout_session(4990, client_reference_id=shop["click_id"]))
    signature = {
        "other secret": sign(body, "whsec_another_endpoint"),
        "tampered": sign(body),
        "missing": None,
        "stale": sign(body, at=int(time.time()) - 3600),
        "not a signature": "v1=abc",
        "unset": sign(body),
    }[how]
    sent = body.replace(b"4990", b"9990") if how == "tampered" else body
    response = _post(client, sent, signature)
    assert response.status_code == 403, response.json
    assert "Stripe-Signature" in response.json["errors"]
    if how == "unset":
        assert "SMSTRACK_STRIPE_WEBHOOK_SECRET" in response.json["errors"]["Stripe-Signature"][0]
    assert sale_counts(app) == (0, 0)


def test_other_event_types_are_ignored(app, client):
    response = _post(client, event("customer.created", {"id": "cus_R2d2C3po", "object": "customer"}))
    assert response.status_code == 200
    assert "customer.created" in response.json["ignored"]
    assert sale_counts(app) == (0, 0)


def test_an_unpaid_checkout_session_waits_for_its_payment(app, client, shop):
    unpaid = checkout_session(4990, client_reference_id=shop["click_id"], payment_status="unpaid")
    assert "not paid" in _post(client, event("checkout.session.completed", unpaid)).json["ignored"]
    assert sale_counts(app) == (0, 0)
    paid = checkout_session(4990, client_reference_id=shop["click_id"])
    assert _post(client, event("checkout.session.async_payment_succeeded", paid)).json["status"] == "recorded"
    assert sale_counts(app) == (1, 0)


@pytest.mark.parametrize(("field", "value"), [
    ("amount_total", "49.90"), ("currency", "zzz"), ("client_reference_id", 12.5), ("metadata", ["x"]),
])
def test_a_bad_field_is_a_400_naming_it(app, client, shop, field, value):
    session = checkout_session(4990, client_reference_id=shop["click_id"])
    session[field] = value
    response = _post(client, event("checkout.session.completed", session))
    assert response.status_code == 400, response.json
    assert list(response.json["errors"]) == [f"data.object.{field}" if field != "currency" else "currency"]
    assert sale_counts(app) == (0, 0)


def test_refunds_follow_the_charges_running_total(app, client, actions, shop):
    """``amount_refunded`` is all that was refunded so far: each event adds
    what is new, a redelivered or late older event adds nothing."""
    _post(client, event("checkout.session.completed", checkout_session(4990, client_reference_id=shop["click_id"])))
    first = event("charge.refunded", charge_refunded(4990, 1000, [("re_1", 1000)]), "evt_r1")
    second = event("charge.refunded", charge_refunded(4990, 2500, [("re_2", 1500), ("re_1", 1000)]), "evt_r2")
    answer = _post(client, first)
    assert (answer.status_code, answer.json["status"], answer.json["amount"]) == (200, "refunded", "10.00")
    assert _post(client, first).json["duplicate"] is True
    assert _post(client, second).json["amount"] == "15.00"
    late = _post(client, first)  # Stripe does not promise the order
    assert late.status_code == 200
    from wsgi import db

    with app.app_context():
        refunds = db.session.execute(select(Refund.external_id, Refund.amount).order_by(Refund.id)).all()
    assert [(r.external_id, r.amount) for r in refunds] == [("re_1", Decimal("10.00")), ("re_2", Decimal("15.00"))]
    report = actions.report(shop["key"], shop["campaign"]["id"])
    assert (report["revenue"], report["refunded"], report["net_revenue"]) == ({"USD": "49.90"}, {"USD": "25.00"}, "24.90")


def test_refunds_without_their_list_count_once(app, client, actions, shop):
    """Newer API versions send the charge without ``refunds``: the running
    total still counts each refund once."""
    _post(client, event("payment_intent.succeeded", payment_intent(5000, "jpy", metadata={"smsclid": shop["click_id"]})))
    partial = event("charge.refunded", charge_refunded(5000, 2000, None, "jpy"))
    full = event("charge.refunded", charge_refunded(5000, 5000, None, "jpy"))
    assert [_post(client, b).status_code for b in (partial, partial, full, full, partial)] == [200] * 5
    [row] = stored_conversions(app)
    assert row.refunded == Decimal(5000)
    assert sale_counts(app) == (1, 2)
    assert actions.report(shop["key"], shop["campaign"]["id"])["refunded"] == {"JPY": "5000.00"}


def test_a_refund_of_an_unknown_payment_is_ignored(app, client):
    response = _post(client, event("charge.refunded", charge_refunded(4990, 4990, [("re_9", 4990)], pi="pi_unknown")))
    assert (response.status_code, "pi_unknown" in response.json["ignored"]) == (200, True)
    assert sale_counts(app) == (0, 0)


def test_a_secret_without_the_stripe_library_fails_at_start(make_app, monkeypatch):
    monkeypatch.setitem(sys.modules, "stripe", None)  # as if not installed
    with pytest.raises(RuntimeError, match=r"pip install 'flask-smstrack\[stripe\]'"):
        make_app(SMSTRACK_STRIPE_WEBHOOK_SECRET=SECRET)


def test_a_refund_before_the_click_is_known_moves_with_the_sale(app, client, actions, shop):
    """The PaymentIntent (no click id) and a refund arrive before the
    Checkout Session that names the click: the attributed sale takes in
    both, and the report counts one sale and its refund."""
    _post(client, event("payment_intent.succeeded", payment_intent(4990)))
    assert _post(client, event("charge.refunded", charge_refunded(4990, 990, [("re_1", 990)]))).status_code == 200
    session = event("checkout.session.completed", checkout_session(4990, client_reference_id=shop["click_id"]))
    assert _post(client, session).json["attributed"] is True
    [row] = stored_conversions(app)
    assert (row.campaign_id, row.owner_id, row.refunded) == (
        shop["campaign"]["id"], _user_id(app, "shop@example.com"), Decimal("9.90"))
    assert sale_counts(app) == (1, 1)
    report = actions.report(shop["key"], shop["campaign"]["id"])
    assert (report["conversions"], report["refunded"], report["net_revenue"]) == (1, {"USD": "9.90"}, "40.00")
    # Later refunds find it.
    later = event("charge.refunded", charge_refunded(4990, 1990, [("re_2", 1000), ("re_1", 990)]))
    assert _post(client, later).json["amount"] == "10.00"


def test_a_setup_session_is_no_sale(app, client, shop):
    setup = dict(checkout_session(0, client_reference_id=shop["click_id"], pi=None), mode="setup",
                 payment_status="no_payment_required", amount_total=None)
    assert "setup" in _post(client, event("checkout.session.completed", setup)).json["ignored"]
    assert sale_counts(app) == (0, 0)


def test_without_the_library_or_a_secret_events_are_refused(make_app, monkeypatch):
    monkeypatch.setitem(sys.modules, "stripe", None)
    app = make_app()
    body = event("checkout.session.completed", checkout_session(4990))
    response = _post(app.test_client(), body)
    assert response.status_code == 403, response.json
    assert "SMSTRACK_STRIPE_WEBHOOK_SECRET" in response.json["errors"]["Stripe-Signature"][0]
