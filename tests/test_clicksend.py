"""Sending through ClickSend with the real ``clicksend`` SDK, pointed at a
fake ClickSend API on 127.0.0.1; its receipts and STOP replies."""
from collections import Counter
from decimal import Decimal

import pytest
from sqlalchemy import select

from conftest import Actions, recipients_by_phone, send
from e2e.fake_clicksend import API_KEY, USERNAME, FakeClickSend
from e2e.support import free_port
from flask_smstrack.models import Campaign, Suppression
from flask_smstrack.sms.providers import SendError
from flask_smstrack.sms.providers.clicksend import receipt_status

BASE = "https://sms.example.com"
SECRET = "cs-webhook-secret-1"
PEOPLE = (
    "phone,first_name\n+14155550100," + "Anastasia" * 12 + "\n+14155550101,Ben\n+14155550102,Cy\n"
    "+14155550103,Dee\n+14155550104,Eve\n"
)
PHONES = ["+14155550100", "+14155550101", "+14155550102", "+14155550103", "+14155550104"]


@pytest.fixture
def fake():
    with FakeClickSend() as fake:
        yield fake


def _config(fake, **extra):
    return {
        "SMSTRACK_BASE_URL": BASE,
        "SMSTRACK_SMS_PROVIDER": "clicksend",
        "SMSTRACK_CLICKSEND_USERNAME": USERNAME,
        "SMSTRACK_CLICKSEND_API_KEY": API_KEY,
        "SMSTRACK_CLICKSEND_API_URL": fake.url,
        "SMSTRACK_CLICKSEND_WEBHOOK_SECRET": SECRET,
        "SMSTRACK_SEND_RATE": 1000,
        **extra,
    }


@pytest.fixture
def cs_app(make_app, fake):
    return make_app(**_config(fake))


def _campaign(app, **fields) -> int:
    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key, cost=None, sent=None, message_template="Hi {first_name}, 20% off today: {link}", **fields)
    actions.link(key, campaign["id"])
    actions.recipients(key, campaign["id"], PEOPLE)
    return campaign["id"]


def _sends_per_phone(fake) -> Counter:
    return Counter(m["to"] for r in fake.sends for m in r.body["messages"])


def test_send_stores_clicksend_answers_and_prices(cs_app, fake):
    campaign_id = _campaign(cs_app)
    result = send(cs_app, campaign_id)
    assert (result.sent, result.failed, result.unknown, result.stopped) == (5, [], 0, None)
    assert result.segments == 6
    people = recipients_by_phone(cs_app, campaign_id)
    by_phone = {m["to"]: m for m in fake.messages}
    assert sorted(by_phone) == PHONES
    for phone, person in people.items():
        assert person.message_sid == by_phone[phone]["message_id"]
        assert person.status == "queued"
        assert by_phone[phone]["body"] == person.message
        assert by_phone[phone]["custom_string"] == str(person.id)
    assert people["+14155550100"].cost == Decimal("0.1540")
    assert people["+14155550101"].cost == Decimal("0.0770")
    # No price of its own: the campaign costs what ClickSend charged.
    from wsgi import db

    with cs_app.app_context():
        assert db.session.get(Campaign, campaign_id).total_cost == Decimal("0.4620")
    # Run again: nothing is sent twice.
    assert send(cs_app, campaign_id).sent == 0
    assert len(fake.sends) == 5


def test_a_campaign_priced_per_segment_keeps_its_price(cs_app, fake):
    campaign_id = _campaign(cs_app, cost_per_segment="0.01")
    send(cs_app, campaign_id)
    from wsgi import db

    with cs_app.app_context():
        assert db.session.get(Campaign, campaign_id).total_cost == Decimal("0.06")


def test_campaign_provider_wins_over_the_default(make_app, fake):
    app = make_app(**_config(fake, SMSTRACK_SMS_PROVIDER="twilio"))
    campaign_id = _campaign(app, provider="clicksend")
    assert send(app, campaign_id).sent == 5
    assert len(fake.messages) == 5


def test_crash_mid_send_then_run_again_never_sends_twice(cs_app, fake):
    campaign_id = _campaign(cs_app)
    fake.drop_after = 2
    first = send(cs_app, campaign_id)
    assert (first.sent, first.unknown) == (2, 1)
    assert "lost the connection to ClickSend while sending to +14155550102" in first.stopped
    fake.drop_after = None
    second = send(cs_app, campaign_id)
    assert (second.sent, second.unknown, second.stopped) == (2, 1, None)
    assert _sends_per_phone(fake) == Counter(PHONES)
    assert len(fake.messages) == 4


@pytest.mark.parametrize("clicksend_has_it", [True, False], ids=["adopted", "sent-again"])
def test_retry_unknown_asks_clicksend_first(cs_app, fake, clicksend_has_it, monkeypatch):
    from flask_smstrack.sms import sending

    campaign_id = _campaign(cs_app)
    fake.drop_after, fake.accept_dropped = 2, clicksend_has_it
    send(cs_app, campaign_id)
    fake.drop_after = None
    monkeypatch.setattr(sending, "IN_FLIGHT", sending.IN_FLIGHT * 0)
    result = send(cs_app, campaign_id, retry_unknown=True)
    assert result.unknown == 0 and result.stopped is None
    assert (result.reconciled, result.sent) == ((1, 2) if clicksend_has_it else (0, 3))
    # Exactly one message per number at ClickSend, whichever way.
    assert Counter(m["to"] for m in fake.messages) == Counter(PHONES)
    people = recipients_by_phone(cs_app, campaign_id)
    assert {p.message_sid for p in people.values()} == {m["message_id"] for m in fake.messages}


def test_invalid_number_fails_and_the_others_go(cs_app, fake):
    campaign_id = _campaign(cs_app)
    fake.invalid = {"+14155550101"}
    result = send(cs_app, campaign_id)
    assert result.sent == 4
    assert [(f.phone, f.code) for f in result.failed] == [("+14155550101", "INVALID_RECIPIENT")]
    assert recipients_by_phone(cs_app, campaign_id)["+14155550101"].status == "failed"


def test_wrong_credentials_stop_and_keep_messages_ready(make_app, fake):
    app = make_app(**_config(fake, SMSTRACK_CLICKSEND_API_KEY="wrong"))
    campaign_id = _campaign(app)
    result = send(app, campaign_id)
    assert result.sent == 0 and "ClickSend refused the request: Invalid username or api key." in result.stopped
    assert {p.status for p in recipients_by_phone(app, campaign_id).values()} == {"ready"}
    assert fake.messages == []


def test_clicksend_unreachable(make_app, fake):
    app = make_app(**_config(fake, SMSTRACK_CLICKSEND_API_URL=f"http://127.0.0.1:{free_port()}"))
    campaign_id = _campaign(app)
    result = send(app, campaign_id)
    assert result.sent == 0 and result.stopped.startswith("could not reach ClickSend")
    assert {p.status for p in recipients_by_phone(app, campaign_id).values()} == {"ready"}


def test_settings_say_what_is_missing(make_app):
    app = make_app(SMSTRACK_SMS_PROVIDER="clicksend", SMSTRACK_BASE_URL=BASE)
    campaign_id = _campaign(app)
    with pytest.raises(SendError, match="SMSTRACK_CLICKSEND_USERNAME.*SMSTRACK_CLICKSEND_API_KEY"):
        send(app, campaign_id)


@pytest.mark.parametrize(("code", "word", "ours"), [
    ("201", "Delivered", "delivered"), ("200", "Sent", "sent"), ("301", "Failed", "undelivered"),
    ("301", "Cancelled", "canceled"), ("300", "Failed", None), ("999", None, None), (None, "Queued", "queued"),
])
def test_receipt_status(code, word, ours):
    assert receipt_status(code, word) == ours


def _receipt(client, message_id, code, url=f"/smstrack/webhooks/clicksend/receipts?secret={SECRET}", **kw):
    return client.post(url, data={"message_id": message_id, "status_code": code, "status_text": "x", **kw})


def test_receipts_move_statuses_forward(cs_app, fake):
    campaign_id = _campaign(cs_app)
    send(cs_app, campaign_id)
    ids = {m["to"]: m["message_id"] for m in fake.messages}
    client = cs_app.test_client()
    assert _receipt(client, ids[PHONES[0]], "201").status_code == 204
    assert _receipt(client, ids[PHONES[1]], "301", error_code="8").status_code == 204
    assert _receipt(client, ids[PHONES[0]], "200").status_code == 204  # late: changes nothing
    # As JSON, with the secret as basic auth.
    reply = client.post(
        "/smstrack/webhooks/clicksend/receipts", json={"message_id": ids[PHONES[2]], "status_code": "201"},
        headers={"Authorization": "Basic " + __import__("base64").b64encode(f"clicksend:{SECRET}".encode()).decode()},
    )
    assert reply.status_code == 204
    assert _receipt(client, "NOT-OURS", "201").json == {"ignored": "no message with this message_id"}
    people = recipients_by_phone(cs_app, campaign_id)
    assert [people[p].status for p in PHONES] == ["delivered", "undelivered", "delivered", "queued", "queued"]
    assert people[PHONES[1]].error_code == "8"


@pytest.mark.parametrize("url", [
    "/smstrack/webhooks/clicksend/receipts",
    "/smstrack/webhooks/clicksend/receipts?secret=nope",
    f"/smstrack/webhooks/clicksend/receipts?secret={SECRET}x",
])
def test_receipts_without_the_secret_are_refused(cs_app, fake, url):
    campaign_id = _campaign(cs_app)
    send(cs_app, campaign_id)
    reply = _receipt(cs_app.test_client(), fake.messages[0]["message_id"], "201", url=url)
    assert reply.status_code == 401
    assert "secret" in reply.json["errors"]
    assert {p.status for p in recipients_by_phone(cs_app, campaign_id).values()} == {"queued"}


def test_webhooks_refused_without_a_secret_configured(make_app, fake):
    app = make_app(**_config(fake, SMSTRACK_CLICKSEND_WEBHOOK_SECRET=None))
    reply = _receipt(app.test_client(), "X", "201", url="/smstrack/webhooks/clicksend/receipts?secret=")
    assert reply.status_code == 403
    assert "SMSTRACK_CLICKSEND_WEBHOOK_SECRET" in reply.json["errors"]["secret"][0]


def _inbound(client, body, sender="+14155550102", message_id="IN-1", secret=SECRET):
    return client.post(
        f"/smstrack/webhooks/clicksend/inbound?secret={secret}",
        data={"from": sender, "body": body, "message_id": message_id, "to": "+61411111111", "timestamp": "1700000000"},
    )


def _suppressed(app) -> int:
    from wsgi import db

    with app.app_context():
        return len(db.session.execute(select(Suppression)).all())


def test_stop_reply_suppresses_and_start_lifts(cs_app, fake):
    campaign_id = _campaign(cs_app)
    send(cs_app, campaign_id)
    client = cs_app.test_client()
    assert _inbound(client, "stop", secret="wrong").status_code == 401
    assert _suppressed(cs_app) == 0
    assert _inbound(client, "Thanks!").json == {"ignored": "not a STOP or START reply"}
    assert _inbound(client, " STOP ").status_code == 204
    assert _inbound(client, " STOP ").status_code == 204  # the same message twice
    assert _suppressed(cs_app) == 1
    assert _inbound(client, "start", message_id="IN-2").status_code == 204
    assert _suppressed(cs_app) == 0
    assert _inbound(client, "STOP", sender="not a number", message_id="IN-3").status_code == 400


def test_provider_through_the_api_and_the_form(app, actions):
    from test_dashboard import _campaign_form, csrf_token, login

    key = actions.api_key()
    made = actions.api("POST", "/campaigns", key, json={"name": "A", "currency": "USD", "provider": "clicksend"})
    assert made.status_code == 201 and made.json["provider"] == "clicksend"
    wrong = actions.api("POST", "/campaigns", key, json={"name": "B", "currency": "USD", "provider": "sms-r-us"})
    assert wrong.status_code == 400 and "provider" in wrong.json["errors"]
    client = login(app)
    url = f"/smstrack/campaigns/{made.json['id']}/edit"
    page = client.get(url).text
    assert '<option value="clicksend" selected>ClickSend</option>' in page
    token = csrf_token(client, url)
    saved = client.post(url, data={"csrf_token": token, **_campaign_form(provider="twilio")})
    assert saved.status_code == 302
    assert actions.api("GET", f"/campaigns/{made.json['id']}", key).json["provider"] == "twilio"
    bad = client.post(url, data={"csrf_token": token, **_campaign_form(provider="nope")})
    assert bad.status_code == 400 and "Must be one of" in bad.text
