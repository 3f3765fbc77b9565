"""Sending through the real ``twilio`` client, pointed at a fake Twilio API
on 127.0.0.1 with ``SMSTRACK_TWILIO_API_URL``."""
import datetime as dt
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import select, update

from conftest import Actions, recipients_by_phone, send
from e2e.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from e2e.support import free_port
from flask_smstrack.models import Campaign, OptOutEvent, Recipient
from flask_smstrack.sms.twilio import SendError, twilio_settings

BASE = "https://sms.example.com"
FROM = "+15005550006"
SERVICE = "MG" + "b2" * 16
#: Ana's long first name makes her message two segments.
PEOPLE = (
    "phone,first_name\n+14155550100," + "Anastasia" * 12 + "\n+14155550101,Ben\n+14155550102,Cy\n"
    "+14155550103,Dee\n+14155550104,Eve\n"
)
PHONES = ["+14155550100", "+14155550101", "+14155550102", "+14155550103", "+14155550104"]


@pytest.fixture(autouse=True)
def _no_twilio_env(no_twilio_env):
    """Twilio settings of the machine's environment stay out."""


@pytest.fixture
def fake():
    with FakeTwilio() as fake:
        yield fake


def _config(fake, **extra):
    return {
        "SMSTRACK_BASE_URL": BASE,
        "SMSTRACK_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "SMSTRACK_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "SMSTRACK_TWILIO_FROM": FROM,
        "SMSTRACK_TWILIO_API_URL": fake.url,
        "SMSTRACK_SEND_RATE": 1000,
        **extra,
    }


@pytest.fixture
def sms_app(make_app, fake):
    return make_app(**_config(fake))


def _campaign(app, people=PEOPLE) -> int:
    """A campaign with a message, a link, a price per segment and recipients."""
    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(
        key, cost=None, sent=None, cost_per_segment="0.0079", message_template="Hi {first_name}, 20% off today: {link}"
    )
    actions.link(key, campaign["id"])
    actions.recipients(key, campaign["id"], people)
    return campaign["id"]


def _creates_per_phone(fake) -> Counter:
    return Counter(r.form["To"] for r in fake.creates)


@pytest.mark.parametrize("service", [False, True], ids=["from-number", "messaging-service"])
def test_send_stores_twilio_answers(make_app, fake, service):
    config = _config(fake, SMSTRACK_TWILIO_MESSAGING_SERVICE_SID=SERVICE) if service else _config(fake)
    app = make_app(**config)
    campaign_id = _campaign(app)
    result = send(app, campaign_id)
    assert (result.sent, result.failed, result.unknown, result.skipped, result.stopped) == (5, [], 0, 0, None)
    assert result.segments == 6

    people = recipients_by_phone(app, campaign_id)
    by_phone = {m["to"]: m for m in fake.messages}
    assert sorted(by_phone) == PHONES
    for phone, person in people.items():
        message = by_phone[phone]
        assert person.message_sid == message["sid"]
        assert person.message_sid.startswith("SM") and len(person.message_sid) == 34
        assert person.status == ("accepted" if service else "queued")
        assert person.sent_at is not None and person.status_at >= person.sent_at
        assert message["body"] == person.message
    assert people["+14155550100"].segments == 2
    assert {p.segments for phone, p in people.items() if phone != "+14155550100"} == {1}

    first = fake.creates[0].form
    assert first["StatusCallback"] == f"{BASE}/smstrack/webhooks/twilio/status"
    if service:
        assert first["MessagingServiceSid"] == SERVICE and "From" not in first
    else:
        assert first["From"] == FROM and "MessagingServiceSid" not in first
    # In recipient order.
    assert [r.form["To"] for r in fake.creates] == PHONES

    from wsgi import db

    with app.app_context():
        campaign = db.session.get(Campaign, campaign_id)
        assert campaign.status == "sent" and campaign.sent_at is not None
        sent_at = campaign.sent_at

    # Run again: nothing is sent twice.
    again = send(app, campaign_id)
    assert (again.sent, again.failed, again.unknown) == (0, [], 0)
    assert len(fake.creates) == 5
    with app.app_context():
        assert db.session.get(Campaign, campaign_id).sent_at == sent_at


def test_crash_mid_send_then_run_again_sends_only_the_rest(sms_app, fake):
    campaign_id = _campaign(sms_app)
    fake.drop_after = 2
    first = send(sms_app, campaign_id)
    assert (first.sent, first.unknown) == (2, 1)
    assert "lost the connection to Twilio while sending to +14155550102" in first.stopped
    people = recipients_by_phone(sms_app, campaign_id)
    assert people["+14155550102"].status == "sending" and people["+14155550102"].message_sid is None
    assert [people[p].status for p in PHONES[3:]] == ["ready", "ready"]

    fake.drop_after = None
    second = send(sms_app, campaign_id)
    assert (second.sent, second.unknown, second.stopped) == (2, 1, None)
    # Every number was asked for once: the one in an unknown state was not sent again.
    assert _creates_per_phone(fake) == Counter(PHONES)
    assert len(fake.messages) == 4


@pytest.mark.parametrize("twilio_has_it", [True, False], ids=["adopted", "sent-again"])
def test_retry_unknown_asks_twilio_first(sms_app, fake, twilio_has_it):
    from wsgi import db

    campaign_id = _campaign(sms_app)
    fake.drop_after, fake.accept_dropped = 1, twilio_has_it
    first = send(sms_app, campaign_id)
    assert (first.sent, first.unknown) == (1, 1)
    assert len(fake.messages) == (2 if twilio_has_it else 1)
    fake.drop_after = None

    # Claimed moments ago, it may still be on its way: left alone.
    fresh = send(sms_app, campaign_id, retry_unknown=True)
    assert (fresh.sent, fresh.reconciled, fresh.unknown) == (3, 0, 1)
    assert _creates_per_phone(fake)["+14155550101"] == 1

    with sms_app.app_context():
        db.session.execute(
            update(Recipient)
            .where(Recipient.phone == "+14155550101")
            .values(sent_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=2))
        )
        db.session.commit()
    settled = send(sms_app, campaign_id, retry_unknown=True)
    assert settled.unknown == 0 and settled.stopped is None
    ben = recipients_by_phone(sms_app, campaign_id)["+14155550101"]
    assert ben.status == "queued"
    twilio_sids = [m["sid"] for m in fake.messages if m["to"] == "+14155550101"]
    assert len(twilio_sids) == 1 and ben.message_sid == twilio_sids[0]
    if twilio_has_it:
        assert (settled.reconciled, settled.sent) == (1, 0)
        assert _creates_per_phone(fake)["+14155550101"] == 1
        listed = [r for r in fake.requests if r.method == "GET"]
        assert listed[0].args["To"] == "+14155550101" and "DateSent>" in listed[0].args
    else:
        assert (settled.reconciled, settled.sent) == (0, 1)
        assert _creates_per_phone(fake)["+14155550101"] == 2
    assert len(fake.messages) == 5


def test_invalid_number_fails_and_the_others_go(sms_app, fake):
    campaign_id = _campaign(sms_app)
    fake.invalid = {"+14155550101"}
    result = send(sms_app, campaign_id)
    assert result.sent == 4 and result.stopped is None
    assert result.failed == [("+14155550101", "21211", "The 'To' number +14155550101 is not a valid phone number.")]
    ben = recipients_by_phone(sms_app, campaign_id)["+14155550101"]
    assert (ben.status, ben.error_code, ben.message_sid) == ("failed", "21211", None)
    # A refused number is not tried again.
    assert send(sms_app, campaign_id).failed == []
    assert len(fake.creates) == 5


def test_number_unsubscribed_at_twilio_goes_on_the_opt_out_list(sms_app, fake):
    """Twilio refuses a number that replied STOP to the sender (error 21610):
    it goes on the owner's list, so no later campaign tries it again."""
    from flask_smstrack.sms.suppression import is_suppressed
    from wsgi import db

    campaign_id = _campaign(sms_app)
    fake.unsubscribed = {"+14155550102"}
    result = send(sms_app, campaign_id)
    assert result.sent == 4 and [f.code for f in result.failed] == ["21610"]
    with sms_app.app_context():
        owner = db.session.get(Campaign, campaign_id).owner_id
        assert is_suppressed(owner, "+14155550102") and not is_suppressed(owner, "+14155550101")
        events = db.session.execute(select(OptOutEvent.action, OptOutEvent.source)).all()
        assert events == [("opt_out", "twilio")]
    again = _campaign(sms_app)
    assert send(sms_app, again).sent == 4 and len(fake.creates) == 5 + 4


def test_rate_limit(sms_app, fake):
    campaign_id = _campaign(sms_app)
    started = time.monotonic()
    result = send(sms_app, campaign_id, rate=20)
    assert result.sent == 5
    # Five messages at 20 per second: four intervals of 50 ms at least.
    assert time.monotonic() - started >= 0.2


def test_two_senders_at_once_never_send_twice(sms_app, fake):
    from wsgi import db

    from flask_smstrack.sms.messages import prepare_messages

    campaign_id = _campaign(sms_app)
    with sms_app.app_context():
        prepare_messages(db.session.get(Campaign, campaign_id))
    results, errors = [], []

    def run():
        try:
            results.append(send(sms_app, campaign_id, rate=50))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sum(r.sent for r in results) == 5
    assert _creates_per_phone(fake) == Counter(PHONES)


def test_wrong_credentials_stop_and_keep_messages_ready(make_app, fake):
    app = make_app(**_config(fake, SMSTRACK_TWILIO_AUTH_TOKEN="not-the-token"))
    campaign_id = _campaign(app)
    result = send(app, campaign_id)
    assert result.sent == 0 and result.failed == []
    assert "Twilio refused the request: Authenticate (error 20003)" in result.stopped
    assert {p.status for p in recipients_by_phone(app, campaign_id).values()} == {"ready"}


def test_twilio_unreachable(make_app, fake):
    app = make_app(**_config(fake, SMSTRACK_TWILIO_API_URL=f"http://127.0.0.1:{free_port()}"))
    campaign_id = _campaign(app)
    result = send(app, campaign_id)
    assert result.sent == 0 and result.unknown == 0
    assert result.stopped.startswith("could not reach Twilio")
    assert {p.status for p in recipients_by_phone(app, campaign_id).values()} == {"ready"}


def test_settings_fall_back_to_twilio_environment(make_app, monkeypatch):
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC123")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "from-env")
    app = make_app(SMSTRACK_BASE_URL=BASE, SMSTRACK_TWILIO_MESSAGING_SERVICE_SID=SERVICE)
    with app.app_context():
        settings = twilio_settings()
    assert (settings.account_sid, settings.auth_token) == ("AC123", "from-env")
    assert settings.status_callback == f"{BASE}/smstrack/webhooks/twilio/status"


def test_settings_say_what_is_missing(make_app):
    app = make_app()
    with app.app_context(), pytest.raises(SendError) as err:
        twilio_settings()
    message = str(err.value)
    for key in ("SMSTRACK_TWILIO_ACCOUNT_SID", "SMSTRACK_TWILIO_AUTH_TOKEN", "SMSTRACK_BASE_URL"):
        assert key in message
    assert "SMSTRACK_TWILIO_MESSAGING_SERVICE_SID (MG...) or SMSTRACK_TWILIO_FROM" in message


# -- the CLI -------------------------------------------------------------------


def test_cli_send(sms_app, fake):
    campaign_id = _campaign(sms_app)
    runner = sms_app.test_cli_runner()
    result = runner.invoke(args=["smstrack", "send", str(campaign_id), "--yes"])
    assert result.exit_code == 0, result.output
    assert (
        f"Send 5 messages (6 segments, 0.0474 USD) of campaign {campaign_id} (Spring sale) from {FROM},"
        " at 1000 per second (under a second)." in result.output
    )
    assert "Sending" in result.output
    assert "Sent 5 messages (6 segments); 0 failed." in result.output
    again = runner.invoke(args=["smstrack", "send", str(campaign_id), "--yes"])
    assert again.exit_code == 0, again.output
    assert f"Nothing to send: campaign {campaign_id} has no message ready." in again.output
    assert len(fake.creates) == 5


def test_cli_send_asks_first(sms_app, fake):
    campaign_id = _campaign(sms_app)
    runner = sms_app.test_cli_runner()
    declined = runner.invoke(args=["smstrack", "send", str(campaign_id)], input="n\n")
    assert declined.exit_code == 1
    assert "Send 5 messages (6 segments, 0.0474 USD)" in declined.output and "Aborted" in declined.output
    assert fake.creates == []
    accepted = runner.invoke(args=["smstrack", "send", str(campaign_id), "--rate", "500"], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "at 500 per second" in accepted.output
    assert len(fake.creates) == 5


def test_cli_reports_failures_and_unknown(sms_app, fake):
    campaign_id = _campaign(sms_app)
    fake.invalid = {"+14155550100"}
    fake.drop_after = 2
    result = sms_app.test_cli_runner().invoke(args=["smstrack", "send", str(campaign_id), "--yes"])
    assert result.exit_code == 1
    assert "Sent 2 messages (2 segments); 1 failed." in result.output
    assert "+14155550100: error 21211: The 'To' number +14155550100 is not a valid phone number." in result.output
    assert "1 message in an unknown state" in result.output and "--retry-unknown" in result.output
    assert "1 message not sent yet: run the same command again to send them." in result.output
    assert "stopped: lost the connection to Twilio while sending to +14155550103" in result.output


def test_cli_config_error(make_app, fake):
    app = make_app(SMSTRACK_BASE_URL=BASE)
    campaign_id = _campaign(app)
    result = app.test_cli_runner().invoke(args=["smstrack", "send", str(campaign_id), "--yes"])
    assert result.exit_code == 1
    assert "cannot send through Twilio: set SMSTRACK_TWILIO_ACCOUNT_SID" in result.output
    assert "SMSTRACK_TWILIO_AUTH_TOKEN" in result.output
    assert {p.status for p in recipients_by_phone(app, campaign_id).values()} == {"pending"}
    assert fake.requests == []
    missing = app.test_cli_runner().invoke(args=["smstrack", "send", "999", "--yes"])
    assert missing.exit_code == 1 and "no campaign 999" in missing.output


def test_a_claim_taken_over_while_waiting_is_not_sent(sms_app, fake):
    """A sender waiting for its pace whose claim another sender took over
    (``--retry-unknown`` after a long wait) leaves that message alone."""
    from wsgi import db

    from flask_smstrack.sms.messages import prepare_messages
    from flask_smstrack.sms.providers.twilio import TwilioProvider
    from flask_smstrack.sms.sending import _Pacer, _Sender

    campaign_id = _campaign(sms_app)
    with sms_app.app_context():
        prepare_messages(db.session.get(Campaign, campaign_id))
        sender = _Sender(campaign_id, TwilioProvider(twilio_settings()), _Pacer(1000), None)
        row = db.session.execute(
            select(Recipient.id, Recipient.phone, Recipient.message, Recipient.segments)
            .where(Recipient.campaign_id == campaign_id).order_by(Recipient.id).limit(1)
        ).one()
        assert sender._claim(row.id)
        # Meanwhile another run re-claims it with a claim time of its own.
        db.session.execute(
            update(Recipient).where(Recipient.id == row.id).values(sent_at=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc))
        )
        db.session.commit()
        assert sender._send(row) is True
        assert sender.result.skipped == 1
    assert fake.creates == []
