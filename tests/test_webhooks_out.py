"""Outbound webhooks in process, against the real database and a real HTTP
receiver on 127.0.0.1 that verifies each request with ``standardwebhooks``:
endpoints through the API, events found by the periodic job, retries until
the receiver accepts (once per ``webhook-id``), disabling after failures
and the dashboard's notice, "Resend", and GA4 forwarding."""
from __future__ import annotations

import json
import threading
import time
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from conftest import click_id_of
from e2e.receiver import Receiver
from test_dashboard import csrf_token, login


@pytest.fixture
def app(make_app):
    return make_app(SMSTRACK_WEBHOOK_RETRY_BASE=0.01, SMSTRACK_WEBHOOK_TIMEOUT=5)


@pytest.fixture
def shop(app, actions):
    """An owner with a key, a campaign and its link."""
    key = actions.api_key("owner@example.com")
    campaign = actions.campaign(key, name="Spring sale")
    link = actions.link(key, campaign["id"])
    return {"key": key, "campaign": campaign, "code": link["code"]}


def dispatch(app) -> dict:
    from flask_smstrack.integrations.webhooks_out import dispatch as run

    with app.app_context():
        return run()


def add_endpoint(actions, key, url, events) -> dict:
    response = actions.api("POST", "/webhook-endpoints", key, json={"url": url, "events": events})
    assert response.status_code == 201, response.json
    assert response.json["secret"].startswith("whsec_")
    return response.json


def convert(actions, key, click_id, order_id="A-1001", revenue="49.90"):
    body = {"click_id": click_id, "event": "purchase", "revenue": revenue, "currency": "USD", "order_id": order_id}
    response = actions.api("POST", "/conversions", key, json=body)
    assert response.status_code == 201, response.json
    return response.json


def until(app, done, timeout=15.0):
    """Run the periodic job until ``done()`` or ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        dispatch(app)
        time.sleep(0.05)
    return done()


def test_click_and_conversion_reach_the_receiver_signed(app, actions, shop):
    with Receiver() as receiver:
        endpoint = add_endpoint(actions, shop["key"], receiver.url + "/hook", ["click", "conversion"])
        click_id = click_id_of(actions.click(shop["code"]))
        conversion = convert(actions, shop["key"], click_id)
        dispatch(app)
        payloads = receiver.verified(endpoint["secret"])
        dispatch(app)  # nothing new: nothing sent again
        assert len(receiver.requests) == 2
    by_type = {p["type"]: p for p in payloads}
    assert set(by_type) == {"click", "conversion"}
    click, sale = by_type["click"]["data"], by_type["conversion"]["data"]
    assert click["click_id"] == click_id and click["campaign"] == "Spring sale" and click["code"] == shop["code"]
    assert sale == {**sale, "conversion_id": conversion["id"], "revenue": "49.90", "currency": "USD",
                    "order_id": "A-1001", "click_id": click_id, "campaign_id": shop["campaign"]["id"]}
    assert {r.webhook_id for r in receiver.requests} == {f"click_{1}", f"conversion_{conversion['id']}"}
    assert receiver.requests[0].path == "/hook"
    # A wrong secret fails verification: the receiver's check can fail.
    from standardwebhooks import Webhook
    from standardwebhooks.webhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(receiver.requests[0].body, receiver.requests[0].headers)
    log = actions.api("GET", "/webhook-deliveries", shop["key"]).json["deliveries"]
    assert [(d["status"], d["attempts"], d["response_status"]) for d in log] == [("delivered", 1, 204)] * 2


def test_a_receiver_failing_twice_gets_the_event_once_after_retries(app, actions, shop):
    with Receiver(fail=2) as receiver:
        add_endpoint(actions, shop["key"], receiver.url, ["conversion"])
        convert(actions, shop["key"], None)
        assert until(app, lambda: receiver.accepted())
        for _ in range(5):
            dispatch(app)
    statuses = [r.status for r in receiver.requests]
    assert statuses == [500, 500, 204]
    assert len({r.webhook_id for r in receiver.requests}) == 1
    assert len(receiver.accepted()) == 1
    delivery = actions.api("GET", "/webhook-deliveries", shop["key"]).json["deliveries"][0]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3


def test_only_one_of_two_workers_sends_a_delivery(app, actions, shop):
    """Two workers attempt the same due delivery at once: the claim lets one."""
    from wsgi import db

    from flask_smstrack.integrations.events import scan_all
    from flask_smstrack.integrations.webhooks_out import attempt
    from flask_smstrack.models import WebhookDelivery

    with Receiver() as receiver:
        add_endpoint(actions, shop["key"], receiver.url, ["conversion"])
        convert(actions, shop["key"], None)
        with app.app_context():
            scan_all()
            delivery_id = db.session.execute(select(WebhookDelivery.id)).scalar_one()
        outcomes, start = [], threading.Barrier(2)

        def worker():
            with app.app_context():
                start.wait()
                outcomes.append(attempt(delivery_id))
                db.session.remove()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert sorted(outcomes, key=str) == sorted(["delivered", None], key=str)
    assert len(receiver.requests) == 1


def test_endpoint_disabled_after_failures_shows_on_the_dashboard_and_enables_again(make_app, actions):
    app = make_app(SMSTRACK_WEBHOOK_RETRY_BASE=0.01, SMSTRACK_WEBHOOK_RETRIES=1, SMSTRACK_WEBHOOK_DISABLE_AFTER=2)
    from conftest import Actions

    actions = Actions(app)
    key = actions.api_key("owner@example.com")
    with Receiver(fail=-1, fail_status=503) as receiver:
        endpoint = add_endpoint(actions, key, receiver.url, ["conversion"])
        convert(actions, key, None, order_id="A-1")
        assert until(app, lambda: len(receiver.requests) == 2)
        dispatch(app)
        listed = actions.api("GET", "/webhook-endpoints", key).json["endpoints"][0]
        assert listed["enabled"] is True and listed["failed_deliveries"] == 1  # one delivery failed: not yet
        convert(actions, key, None, order_id="A-2")
        assert until(app, lambda: len(receiver.requests) == 4)
        listed = actions.api("GET", "/webhook-endpoints", key).json["endpoints"][0]
        assert listed["enabled"] is False and "2 deliveries in a row failed" in listed["disabled_reason"]
        assert "HTTP 503" in listed["disabled_reason"]
        convert(actions, key, None, order_id="A-3")
        for _ in range(3):
            dispatch(app)
        assert len(receiver.requests) == 4  # disabled: nothing more goes out
        client = login(app)
        page = client.get("/smstrack/").text
        assert f"Webhook {receiver.url} is disabled: 2 deliveries in a row failed every retry" in page
        token = csrf_token(client, "/smstrack/webhooks")
        enabled = client.post(f"/smstrack/webhooks/{endpoint['id']}/enable", data={"csrf_token": token})
        assert enabled.status_code == 302
        assert "is disabled" not in client.get("/smstrack/").text
        assert actions.api("GET", "/webhook-endpoints", key).json["endpoints"][0]["enabled"] is True


def test_resend_from_the_api_and_the_dashboard(app, actions, shop):
    with Receiver() as receiver:
        endpoint = add_endpoint(actions, shop["key"], receiver.url, ["conversion"])
        convert(actions, shop["key"], None)
        dispatch(app)
        delivery = actions.api("GET", "/webhook-deliveries", shop["key"]).json["deliveries"][0]
        again = actions.api("POST", f"/webhook-deliveries/{delivery['id']}/resend", shop["key"])
        assert again.status_code == 202 and again.json["status"] == "delivered"
        client = login(app)
        token = csrf_token(client, "/smstrack/webhooks")
        assert client.post(f"/smstrack/webhooks/deliveries/{delivery['id']}/resend").status_code == 400  # no CSRF
        pressed = client.post(f"/smstrack/webhooks/deliveries/{delivery['id']}/resend", data={"csrf_token": token})
        assert pressed.status_code == 302
        payloads = receiver.verified(endpoint["secret"])
    assert len(payloads) == 3 and {r.webhook_id for r in receiver.requests} == {delivery["event_id"]}


def test_ga4_gets_each_conversion_as_a_purchase(make_app):
    from conftest import Actions

    with Receiver() as ga:
        app = make_app(SMSTRACK_GA4_ENDPOINT=ga.url + "/mp/collect")
        actions = Actions(app)
        key = actions.api_key("owner@example.com")
        link = actions.link(key, actions.campaign(key, name="Spring sale")["id"])
        set_ = actions.api("PUT", "/ga4", key, json={"measurement_id": "G-TEST1234", "api_secret": "s3cr3t-api"})
        assert set_.status_code == 200 and set_.json["measurement_id"] == "G-TEST1234"
        assert "api_secret" not in set_.json
        click_id = click_id_of(actions.click(link["code"]))
        convert(actions, key, click_id, order_id="A-77", revenue="1234.50")
        dispatch(app)
    [sent] = ga.requests
    assert sent.path == "/mp/collect?measurement_id=G-TEST1234&api_secret=s3cr3t-api"
    body = json.loads(sent.body, parse_float=Decimal)
    assert body == {"client_id": click_id, "events": [{"name": "purchase", "params": {
        "transaction_id": "A-77", "value": Decimal("1234.50"), "currency": "USD", "campaign": "Spring sale",
        "source": "sms", "medium": "sms"}}]}
    assert b'"value":1234.50' in sent.body
    assert "webhook-signature" not in sent.headers


def test_message_status_and_opt_out_events_carry_no_number(app, actions, shop):
    from wsgi import db

    from flask_smstrack.models import Recipient
    from flask_smstrack.sms.receipts import record_status

    with Receiver() as receiver:
        endpoint = add_endpoint(actions, shop["key"], receiver.url, ["message.status", "opt_out"])
        actions.client.post(
            f"/smstrack/api/v1/campaigns/{shop['campaign']['id']}/recipients", content_type="text/csv",
            data="phone,external_id\n+14155550100,crm-7\n", headers={"Authorization": f"Bearer {shop['key']}"},
        )
        with app.app_context():
            db.session.execute(update(Recipient).values(status="sent", message_sid="SM" + "a" * 32))
            db.session.commit()
            assert record_status("SM" + "a" * 32, "delivered") is True
            assert record_status("SM" + "a" * 32, "delivered") is False  # the same receipt again: no event
        opted = actions.api("POST", "/opt-outs", shop["key"], json={"phones": ["+14155550199"]})
        assert opted.status_code == 200, opted.json
        dispatch(app)
        payloads = receiver.verified(endpoint["secret"])
    assert sorted(p["type"] for p in payloads) == ["message.status", "opt_out"]
    status = next(p["data"] for p in payloads if p["type"] == "message.status")
    assert status["status"] == "delivered" and status["external_id"] == "crm-7"
    raw = b"".join(r.body for r in receiver.requests)
    assert b"4155550100" not in raw and b"4155550199" not in raw and b"phone" not in raw


def test_a_row_committed_after_a_later_one_was_scanned_is_still_sent(app, actions, shop):
    """On PostgreSQL a click may commit after one with a higher id was
    read: the scan reads the ids before its cursor again."""
    from wsgi import db

    from flask_smstrack.integrations.events import scan
    from flask_smstrack.models import WebhookCursor

    with Receiver() as receiver:
        add_endpoint(actions, shop["key"], receiver.url, ["click"])
        click_id = click_id_of(actions.click(shop["code"]))
        with app.app_context():  # the cursor already passed this click
            db.session.execute(update(WebhookCursor).where(WebhookCursor.name == "click").values(last_id=5))
            db.session.commit()
            assert scan("click") == 1
            assert scan("click") == 0
        dispatch(app)
    assert [json.loads(r.body)["data"]["click_id"] for r in receiver.requests] == [click_id]


def test_endpoints_belong_to_their_owner(app, actions, shop):
    other = actions.api_key("other@example.com")
    with Receiver() as receiver:
        mine = add_endpoint(actions, shop["key"], receiver.url, ["click"])
        theirs = add_endpoint(actions, other, receiver.url + "/other", ["click"])
        actions.click(shop["code"])
        dispatch(app)
        assert [r.path for r in receiver.requests] == ["/"]  # only the campaign owner's endpoint
    assert [e["id"] for e in actions.api("GET", "/webhook-endpoints", other).json["endpoints"]] == [theirs["id"]]
    assert "secret" not in actions.api("GET", "/webhook-endpoints", other).json["endpoints"][0]
    assert actions.api("GET", "/webhook-deliveries", other).json["deliveries"] == []
    assert actions.api("DELETE", f"/webhook-endpoints/{mine['id']}", other).status_code == 404
    assert actions.api("GET", f"/webhook-endpoints/{mine['id']}/secret", other).status_code == 404
    assert actions.api("GET", f"/webhook-endpoints/{mine['id']}/secret", shop["key"]).json == {"secret": mine["secret"]}
    assert actions.api("DELETE", f"/webhook-endpoints/{mine['id']}", shop["key"]).status_code == 204
    assert actions.api("GET", "/webhook-endpoints", shop["key"]).json["endpoints"] == []


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"url": "http://crm.example.com/hook", "events": ["click"]}, "url", "Must use https://"),
    ({"url": "ftp://crm.example.com/hook", "events": ["click"]}, "url", "Must be an absolute https:// URL."),
    ({"url": "https://crm.example.com/hook", "events": ["sale"]}, "events", "Must be one of"),
    ({"url": "https://crm.example.com/hook", "events": []}, "events", "Give from 1 to 5 events."),
    ({"url": "https://crm.example.com/hook", "events": ["click", "click"]}, "events", "Give each event once."),
])
def test_bad_endpoints_are_refused_naming_the_field(actions, body, field, message):
    key = actions.api_key()
    response = actions.api("POST", "/webhook-endpoints", key, json=body)
    assert response.status_code == 400
    assert message in json.dumps(response.json["errors"][field])


def test_plain_http_anywhere_when_the_config_allows_it(make_app):
    from conftest import Actions

    actions = Actions(make_app(SMSTRACK_WEBHOOK_ALLOW_HTTP=True))
    key = actions.api_key()
    assert actions.api("POST", "/webhook-endpoints", key,
                       json={"url": "http://crm.internal/hook", "events": ["click"]}).status_code == 201


def test_dashboard_adds_an_endpoint_and_shows_its_secret_once(app, actions):
    actions.api_key("owner@example.com")
    client = login(app)
    token = csrf_token(client, "/smstrack/webhooks")
    bad = client.post("/smstrack/webhooks", data={"csrf_token": token, "url": "http://crm.example.com", "events": "click"})
    assert bad.status_code == 400 and "Must use https://" in bad.text
    added = client.post("/smstrack/webhooks", data={
        "csrf_token": token, "url": "https://crm.example.com/hook", "events": ["click", "conversion"]})
    assert added.status_code == 201
    assert "https://crm.example.com/hook" in added.text and "whsec_" in added.text
    page = client.get("/smstrack/webhooks").text
    assert "https://crm.example.com/hook" in page and "whsec_" not in page
