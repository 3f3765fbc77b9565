"""Twilio's webhooks: delivery receipts and Link Shortening click events,
signed the way Twilio signs them."""
import hashlib
import json

import pytest
from flask import Flask
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select, update
from twilio.request_validator import RequestValidator

from conftest import ANDROID, DESKTOP, IMESSAGE_PREVIEW, IPHONE, Actions, _empty_tables
from flask_smstrack.models import Campaign, Click, Recipient

TOKEN = "webhook-test-token"
BASE = "https://go.example.com"
STATUS = "/smstrack/webhooks/twilio/status"
CLICKS = "/smstrack/webhooks/twilio/clicks"
DESTINATION = "https://shop.example.com/spring?src=sms"
SIDS = {"+14155550100": "SM" + "0" * 32, "+14155550101": "SM" + "1" * 32}


@pytest.fixture(autouse=True)
def _no_twilio_env(no_twilio_env):
    """Twilio settings of the machine's environment stay out."""


@pytest.fixture
def hook_app(make_app):
    return make_app(SMSTRACK_TWILIO_AUTH_TOKEN=TOKEN)


def _sent_campaign(app) -> int:
    """A campaign whose two messages Twilio has queued."""
    from wsgi import db

    from flask_smstrack.sms.messages import prepare_messages

    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key, message_template="Spring sale: {link}")
    actions.link(key, campaign["id"], destination_url="https://shop.example.com/autumn")
    actions.link(key, campaign["id"], destination_url=DESTINATION)
    imported = actions.client.post(
        f"/smstrack/api/v1/campaigns/{campaign['id']}/recipients", data="phone\n" + "\n".join(SIDS) + "\n",
        content_type="text/csv", headers={"Authorization": f"Bearer {key}"},
    )
    assert imported.status_code == 200, imported.json
    with app.app_context():
        app.config["SMSTRACK_BASE_URL"] = BASE
        prepare_messages(db.session.get(Campaign, campaign["id"]))
        app.config["SMSTRACK_BASE_URL"] = None
        for phone, sid in SIDS.items():
            db.session.execute(
                update(Recipient).where(Recipient.phone == phone).values(status="queued", message_sid=sid)
            )
        db.session.commit()
    return campaign["id"]


def _recipient(app, phone="+14155550100") -> Recipient:
    from wsgi import db

    with app.app_context():
        return db.session.execute(select(Recipient).where(Recipient.phone == phone)).scalar_one()


def _clicks(app) -> list[Click]:
    from wsgi import db

    with app.app_context():
        return list(db.session.execute(select(Click).order_by(Click.id)).scalars())


def _receipt(client, form, *, signed_as=None, url=f"http://localhost{STATUS}", token=TOKEN, **kw):
    """Post a delivery receipt signed by Twilio (over ``signed_as``, else ``form``)."""
    signature = RequestValidator(token).compute_signature(url, signed_as or form)
    headers = {"X-Twilio-Signature": signature, **kw.pop("headers", {})}
    return client.post(STATUS, data=form, headers=headers, **kw)


def _status(status, sid=SIDS["+14155550100"], **extra):
    return {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
            "AccountSid": "AC" + "a1" * 16, "To": "+14155550100", "ApiVersion": "2010-04-01", **extra}


# -- delivery receipts -----------------------------------------------------------


def test_signed_receipt_is_stored(hook_app):
    _sent_campaign(hook_app)
    client = hook_app.test_client()
    response = _receipt(client, _status("delivered", NumSegments="2"))
    assert response.status_code == 204, response.get_data(as_text=True)
    ana = _recipient(hook_app)
    assert (ana.status, ana.segments, ana.error_code) == ("delivered", 2, None)
    assert ana.status_at is not None
    assert _recipient(hook_app, "+14155550101").status == "queued"


def test_tampered_or_unsigned_receipts_are_refused(hook_app):
    _sent_campaign(hook_app)
    client = hook_app.test_client()
    tampered = _receipt(client, _status("delivered"), signed_as=_status("undelivered"))
    assert tampered.status_code == 403
    assert "Does not match" in tampered.json["errors"]["X-Twilio-Signature"][0]
    unsigned = client.post(STATUS, data=_status("delivered"))
    assert unsigned.status_code == 403
    assert unsigned.json["errors"]["X-Twilio-Signature"][0].startswith("Missing")
    other_token = _receipt(client, _status("delivered"), token="another-account")
    assert other_token.status_code == 403
    assert _recipient(hook_app).status == "queued"


def test_without_a_token_nothing_is_accepted(make_app):
    app = make_app()
    _sent_campaign(app)
    response = _receipt(app.test_client(), _status("delivered"))
    assert response.status_code == 403
    assert "set SMSTRACK_TWILIO_AUTH_TOKEN" in response.json["errors"]["X-Twilio-Signature"][0]
    assert _recipient(app).status == "queued"


def test_status_only_moves_forward_and_repeats_change_nothing(hook_app):
    _sent_campaign(hook_app)
    client = hook_app.test_client()
    assert _receipt(client, _status("sent")).status_code == 204
    assert _receipt(client, _status("delivered")).status_code == 204
    delivered = _recipient(hook_app)
    assert delivered.status == "delivered"
    # A late "sent", and the same receipt again: nothing changes.
    assert _receipt(client, _status("sent")).status_code == 204
    assert _receipt(client, _status("delivered")).status_code == 204
    assert _receipt(client, _status("queued")).status_code == 204
    again = _recipient(hook_app)
    assert (again.status, again.status_at) == ("delivered", delivered.status_at)


@pytest.mark.parametrize("status", ["failed", "undelivered"])
def test_failure_keeps_error_code(hook_app, status):
    _sent_campaign(hook_app)
    response = _receipt(hook_app.test_client(), _status(status, ErrorCode="30003"))
    assert response.status_code == 204
    ana = _recipient(hook_app)
    assert (ana.status, ana.error_code) == (status, "30003")


def test_unknown_message_is_ignored(hook_app):
    _sent_campaign(hook_app)
    response = _receipt(hook_app.test_client(), _status("delivered", sid="SM" + "f" * 32))
    assert response.status_code == 200
    assert "ignored" in response.json
    assert _recipient(hook_app).status == "queued"


def test_receipt_without_message_sid_is_a_400(hook_app):
    response = _receipt(hook_app.test_client(), {"MessageStatus": "delivered"})
    assert response.status_code == 400
    assert "MessageSid" in response.json["errors"]


PUBLIC = f"{BASE}{STATUS}"
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "go.example.com"}


def test_behind_a_proxy_with_proxy_hops(make_app, monkeypatch):
    monkeypatch.setenv("SMSTRACK_PROXY_HOPS", "1")
    app = make_app(SMSTRACK_TWILIO_AUTH_TOKEN=TOKEN)
    _sent_campaign(app)
    response = _receipt(app.test_client(), _status("delivered"), url=PUBLIC, headers=FORWARDED)
    assert response.status_code == 204, response.get_data(as_text=True)
    assert _recipient(app).status == "delivered"


def test_behind_a_proxy_with_base_url(make_app):
    app = make_app(SMSTRACK_TWILIO_AUTH_TOKEN=TOKEN)
    _sent_campaign(app)
    # Without ProxyFix the app sees http://localhost: the public URL is unknown.
    refused = _receipt(app.test_client(), _status("delivered"), url=PUBLIC, headers=FORWARDED)
    assert refused.status_code == 403
    app.config["SMSTRACK_BASE_URL"] = BASE
    accepted = _receipt(app.test_client(), _status("delivered"), url=PUBLIC, headers=FORWARDED)
    assert accepted.status_code == 204
    assert _recipient(app).status == "delivered"


def test_webhooks_are_exempt_from_the_hosts_csrf(migrated, tmp_path):
    import hostapp

    _empty_tables(migrated)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="s", SQLALCHEMY_DATABASE_URI=migrated, SMSTRACK_SPOOL_DIR=str(tmp_path),
        SMSTRACK_TWILIO_AUTH_TOKEN=TOKEN,
    )
    hostapp.db.init_app(app)
    hostapp.smstrack.init_app(app)
    CSRFProtect(app)
    try:
        response = _receipt(app.test_client(), _status("delivered"))
        assert response.status_code == 200, response.get_data(as_text=True)
        assert "ignored" in response.json
    finally:
        with app.app_context():
            hostapp.db.engine.dispose()


# -- Link Shortening click events -------------------------------------------------


def _click_event(sid=SIDS["+14155550100"], **extra):
    return {
        "event_type": "click", "sms_sid": sid, "to": "+14155550100", "from": "+15005550006",
        "link": DESTINATION + "/", "click_time": "2026-03-01T10:00:00.000Z",
        "messaging_service_sid": "MG" + "b2" * 16, "account_sid": "AC" + "a1" * 16, "user_agent": IPHONE, **extra,
    }


def _post_click(client, body, *, token=TOKEN, signed_body=None):
    """Post a JSON click event signed as Twilio signs JSON: the URL with the
    body's SHA-256 in ``bodySHA256``."""
    raw = body if isinstance(body, str) else json.dumps(body)
    digest = hashlib.sha256((signed_body if signed_body is not None else raw).encode()).hexdigest()
    path = f"{CLICKS}?bodySHA256={digest}"
    signature = RequestValidator(token).compute_signature(f"http://localhost{path}", {})
    return client.post(path, data=raw, content_type="application/json", headers={"X-Twilio-Signature": signature})


def test_click_event_is_a_click_of_the_recipient(hook_app):
    campaign_id = _sent_campaign(hook_app)
    client = hook_app.test_client()
    response = _post_click(client, _click_event())
    assert response.status_code == 204, response.get_data(as_text=True)
    [click] = _clicks(hook_app)
    ana = _recipient(hook_app)
    assert (click.source, click.kind, click.is_first) == ("twilio", "human", True)
    assert (click.campaign_id, click.recipient_id, click.variant_id) == (campaign_id, ana.id, ana.variant_id)
    assert (click.device_type, click.os, click.country, click.ip) == ("mobile", "iOS", None, None)
    assert len(click.click_id) > 20
    from wsgi import db

    with hook_app.app_context():
        # The campaign link going to the clicked destination (the second one).
        links = db.session.get(Campaign, campaign_id).links
        assert click.link_id == links[1].id

    # Twilio retrying the same event (or the request sent again): still one click.
    assert _post_click(client, _click_event()).status_code == 204
    assert len(_clicks(hook_app)) == 1
    # The same phone a minute later: a repeat. Another device: the message was forwarded.
    assert _post_click(client, _click_event(click_time="2026-03-01T10:01:00Z")).status_code == 204
    assert _post_click(client, _click_event(click_time="2026-03-01T10:02:00Z", user_agent=DESKTOP)).status_code == 204
    first, repeat, forward = _clicks(hook_app)
    assert (repeat.kind, repeat.is_first) == ("human", False)
    assert (forward.kind, forward.is_first, forward.device_type) == ("forward", False, "desktop")


def test_click_event_previews_and_other_links(hook_app):
    campaign_id = _sent_campaign(hook_app)
    client = hook_app.test_client()
    assert _post_click(client, _click_event(event_type="preview", user_agent=ANDROID)).status_code == 204
    later = _click_event(user_agent=IMESSAGE_PREVIEW, click_time="2026-03-01T10:00:01Z")
    assert _post_click(client, later).status_code == 204
    # A link that is not a campaign link counts for the campaign's first link.
    elsewhere = _click_event(link="https://elsewhere.example.com/", click_time="2026-03-01T10:00:02Z")
    assert _post_click(client, elsewhere).status_code == 204
    preview, imessage, human = _clicks(hook_app)
    assert (preview.kind, preview.is_first) == ("preview", False)
    assert imessage.kind == "preview"
    assert (human.kind, human.is_first) == ("human", True)
    from wsgi import db

    with hook_app.app_context():
        assert human.link_id == db.session.get(Campaign, campaign_id).links[0].id


def test_click_event_for_our_own_short_link_is_left_to_the_redirect(hook_app):
    from wsgi import db

    _sent_campaign(hook_app)
    with hook_app.app_context():
        code = db.session.execute(
            select(Recipient.message).where(Recipient.phone == "+14155550100")
        ).scalar_one().rsplit("/", 1)[1]
    response = _post_click(hook_app.test_client(), _click_event(link=f"{BASE}/s/{code}"))
    assert response.status_code == 200 and "ignored" in response.json
    assert _clicks(hook_app) == []


def test_click_event_errors(hook_app):
    _sent_campaign(hook_app)
    client = hook_app.test_client()
    bad = _post_click(client, '{"sms_sid": "SM1",')
    assert bad.status_code == 400
    assert bad.json["errors"]["_body"][0].startswith("Not valid JSON")
    no_sid = _post_click(client, {"event_type": "click"})
    assert no_sid.status_code == 400 and "sms_sid" in no_sid.json["errors"]
    not_an_object = _post_click(client, [1, 2])
    assert not_an_object.status_code == 400
    bad_time = _post_click(client, _click_event(click_time="yesterday"))
    assert bad_time.status_code == 400 and bad_time.json["errors"] == {"click_time": ["Not an ISO 8601 time."]}
    unknown = _post_click(client, _click_event(sid="SM" + "f" * 32))
    assert unknown.status_code == 200 and "ignored" in unknown.json
    # A body other than the one signed, or no signature at all.
    tampered = _post_click(client, _click_event(user_agent=DESKTOP), signed_body=json.dumps(_click_event()))
    assert tampered.status_code == 403
    unsigned = client.post(CLICKS, data=json.dumps(_click_event()), content_type="application/json")
    assert unsigned.status_code == 403 and "X-Twilio-Signature" in unsigned.json["errors"]
    no_hash = client.post(
        CLICKS, data=json.dumps(_click_event()), content_type="application/json",
        headers={"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(f"http://localhost{CLICKS}", {})},
    )
    assert no_hash.status_code == 403 and "bodySHA256" in no_hash.json["errors"]["X-Twilio-Signature"][0]
    assert _clicks(hook_app) == []


# -- replays ----------------------------------------------------------------------


def test_click_event_without_click_time_is_refused(hook_app):
    """Without its time a replayed event cannot be told from a new click."""
    _sent_campaign(hook_app)
    client = hook_app.test_client()
    event = _click_event()
    del event["click_time"]
    for _ in range(3):
        response = _post_click(client, event)
        assert response.status_code == 400
        assert list(response.json["errors"]) == ["click_time"]
    assert _clicks(hook_app) == []


def test_replayed_click_event_is_one_click(hook_app):
    _sent_campaign(hook_app)
    client = hook_app.test_client()
    for _ in range(3):
        assert _post_click(client, _click_event()).status_code == 204
    # The same message and moment, written another way, with another agent: the same click.
    same = _click_event(click_time="2026-03-01T11:00:00+01:00", user_agent=ANDROID, link=DESTINATION)
    assert _post_click(client, same).status_code == 204
    [click] = _clicks(hook_app)
    assert click.is_first and click.device_type == "mobile" and click.os == "iOS"
    # The other recipient's click at the same moment is a click of its own.
    assert _post_click(client, _click_event(sid=SIDS["+14155550101"])).status_code == 204
    assert len(_clicks(hook_app)) == 2


def test_click_events_arriving_at_once_are_one_click(hook_app):
    from concurrent.futures import ThreadPoolExecutor

    _sent_campaign(hook_app)
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: _post_click(hook_app.test_client(), _click_event()).status_code, range(8)))
    assert statuses == [204] * 8
    [click] = _clicks(hook_app)
    assert click.is_first


def test_replayed_older_receipts_never_move_a_message_back(hook_app):
    _sent_campaign(hook_app)
    client = hook_app.test_client()
    assert _receipt(client, _status("delivered", NumSegments="2")).status_code == 204
    delivered = _recipient(hook_app)
    for _ in range(3):
        for older in ("queued", "sending", "sent", "undelivered", "failed"):
            response = _receipt(client, _status(older, ErrorCode="30003", NumSegments="5"))
            assert response.status_code == 204
    again = _recipient(hook_app)
    assert (again.status, again.status_at, again.segments, again.error_code) == (
        "delivered", delivered.status_at, 2, None
    )


def test_webhook_fields_that_cannot_be_stored_are_400(hook_app):
    _sent_campaign(hook_app)
    client = hook_app.test_client()
    receipt = _receipt(client, _status("delivered", sid="SM\x00" + "0" * 31))
    assert receipt.status_code == 400 and sorted(receipt.json["errors"]) == ["MessageSid", "SmsSid"]
    for field, value in (("sms_sid", "SM\x00"), ("link", "https://shop.example.com/\ud800"), ("user_agent", "\x00")):
        response = _post_click(client, _click_event(**{field: value}))
        assert response.status_code == 400 and list(response.json["errors"]) == [field], response.json
    deep = _post_click(client, '{"sms_sid": ' + "[" * 200 + "]" * 200 + "}")
    assert deep.status_code == 400 and deep.json["errors"]["_body"] == ["Nested deeper than 32 levels."]
    assert _post_click(client, _click_event(click_time="0001-01-01T00:00:00Z")).status_code == 400
    assert _clicks(hook_app) == [] and _recipient(hook_app).status == "queued"
