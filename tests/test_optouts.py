"""Opt-outs: STOP and START replies through Twilio's signed inbound webhook,
the suppression list from the CLI, the API and CSV files, and suppressed
numbers left out of preparing, exporting and sending."""
import datetime as dt
from collections import Counter

import pytest
from sqlalchemy import func, select, update
from twilio.request_validator import RequestValidator

from conftest import Actions
from e2e.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from flask_smstrack.models import EVERY_OWNER, Campaign, OptOutEvent, Recipient, Suppression
from flask_smstrack.sms.optouts import Reply, read_reply

TOKEN = "optout-test-token"
INBOUND = "/smstrack/webhooks/twilio/inbound"
ANA, BEN, CY = "+14155550100", "+14155550101", "+14155550102"
STRANGER = "+14155550199"
PEOPLE = f"phone,first_name\n{ANA},Ana\n{BEN},Ben\n{CY},Cy\n"


@pytest.fixture(autouse=True)
def _no_twilio_env(no_twilio_env):
    """Twilio settings of the machine's environment stay out."""


@pytest.fixture
def hook_app(make_app):
    return make_app(SMSTRACK_TWILIO_AUTH_TOKEN=TOKEN, SMSTRACK_BASE_URL="https://go.example.com")


def _db():
    from wsgi import db

    return db


def _inbound(client, body, *, sid="SM" + "a" * 32, phone=ANA, token=TOKEN, **extra):
    """A reply as Twilio posts it to the number's "A message comes in" webhook."""
    form = {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": phone, "To": "+15005550006", "Body": body, **extra}
    signature = RequestValidator(token).compute_signature(f"http://localhost{INBOUND}", form)
    return client.post(INBOUND, data=form, headers={"X-Twilio-Signature": signature})


def _campaign(app, email="owner@example.com", people=PEOPLE, sent=True, variants=False) -> int:
    """A campaign of ``email`` whose recipients were texted (``sent``)."""
    from flask_smstrack.sms.messages import prepare_messages

    actions = Actions(app)
    key = actions.api_key(email)
    campaign = actions.campaign(key, message_template="Sale: {link} Reply STOP to opt out")
    actions.link(key, campaign["id"])
    if variants:
        for name in ("A", "B"):
            actions.api("POST", f"/campaigns/{campaign['id']}/variants", key,
                        json={"name": name, "message_template": f"{name}: {{link}} STOP to end"})
    imported = actions.api("POST", f"/campaigns/{campaign['id']}/recipients", key, data=people, content_type="text/csv")
    assert imported.status_code == 200, imported.json
    if sent:
        with app.app_context():
            db = _db()
            prepare_messages(db.session.get(Campaign, campaign["id"]))
            rows = db.session.execute(select(Recipient).where(Recipient.campaign_id == campaign["id"])).scalars()
            for r in rows:
                r.status, r.message_sid = "delivered", f"SM{campaign['id']:02d}{r.id:030d}"
                r.sent_at = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=campaign["id"])
            db.session.commit()
    return campaign["id"]


def _owner_of(app, campaign_id) -> str:
    with app.app_context():
        return _db().session.get(Campaign, campaign_id).owner_id


def _suppressions(app) -> set[tuple[str, str]]:
    """``(owner, last two digits)`` of every suppression."""
    with app.app_context():
        return set(_db().session.execute(select(Suppression.owner_id, Suppression.phone_tail)).all())


def _events(app) -> list[OptOutEvent]:
    with app.app_context():
        return list(_db().session.execute(select(OptOutEvent).order_by(OptOutEvent.id)).scalars())


def _statuses(app, campaign_id) -> dict[str, str]:
    with app.app_context():
        rows = _db().session.execute(
            select(Recipient.phone, Recipient.status).where(Recipient.campaign_id == campaign_id)
        )
        return dict(rows.all())


# -- reading a reply ------------------------------------------------------


@pytest.mark.parametrize("body, expected", [
    ("STOP", Reply("opt_out", "STOP")),
    ("  stop!! ", Reply("opt_out", "STOP")),
    ("Stop.", Reply("opt_out", "STOP")),
    ("\"StopAll\"", Reply("opt_out", "STOPALL")),
    ("unsubscribe", Reply("opt_out", "UNSUBSCRIBE")),
    ("Cancel", Reply("opt_out", "CANCEL")),
    ("end\n", Reply("opt_out", "END")),
    ("QUIT 🙏", Reply("opt_out", "QUIT")),
    ("start", Reply("opt_in", "START")),
    ("Yes!", Reply("opt_in", "YES")),
    ("UNSTOP", Reply("opt_in", "UNSTOP")),
    ("help?", Reply("help", "HELP")),
    ("Info", Reply("help", "INFO")),
    ("stop please", None),
    ("please stop", None),
    ("STOPP", None),
    ("", None),
    ("!!!", None),
    ("Yes, see you at 5", None),
])
def test_read_reply_matches_the_whole_message(app, body, expected):
    with app.app_context():
        assert read_reply(body) == expected


@pytest.mark.parametrize("configured", [["ARRET", "Baja", "ARRÊT"], "ARRET, Baja,ARRÊT"])
def test_localised_keywords(make_app, configured):
    app = make_app(SMSTRACK_OPT_OUT_KEYWORDS=configured, SMSTRACK_OPT_IN_KEYWORDS=["alta"])
    with app.app_context():
        assert read_reply("arret") == Reply("opt_out", "ARRET")
        assert read_reply(" baja. ") == Reply("opt_out", "BAJA")
        assert read_reply("Arrêt") == Reply("opt_out", "ARRÊT")
        assert read_reply("ALTA") == Reply("opt_in", "ALTA")
        assert read_reply("STOP") == Reply("opt_out", "STOP")  # the standard words still count
        assert read_reply("alto") is None


def test_advanced_opt_out_type_wins(app):
    with app.app_context():
        assert read_reply("Arrêtez svp", "STOP") == Reply("opt_out", "ARRÊTEZ SVP")
        assert read_reply("STOP", "START") == Reply("opt_in", "STOP")
        assert read_reply("go on", "start") == Reply("opt_in", "GO ON")
        assert read_reply("", "HELP") == Reply("help", "HELP")
        assert read_reply("hello", "OTHER") is None


# -- the inbound webhook ----------------------------------------------------


def test_stop_reply_suppresses_and_is_attributed(hook_app):
    campaign_id = _campaign(hook_app, variants=True)
    owner = _owner_of(hook_app, campaign_id)
    client = hook_app.test_client()
    response = _inbound(client, "Stop")
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert response.get_data(as_text=True) == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert _suppressions(hook_app) == {(owner, "00")}
    [event] = _events(hook_app)
    with hook_app.app_context():
        ana = _db().session.execute(select(Recipient).where(Recipient.phone == ANA)).scalar_one()
    assert (event.owner_id, event.action, event.source, event.keyword, event.phone_tail) == (
        owner, "opt_out", "reply", "STOP", "00")
    assert (event.campaign_id, event.variant_id, event.recipient_id) == (campaign_id, ana.variant_id, ana.id)
    assert ana.variant_id is not None
    assert event.external_id == "SM" + "a" * 32
    # Only the hash and the last two digits are kept.
    with hook_app.app_context():
        from flask_smstrack.sms.suppression import phone_hash

        assert event.phone_hash == phone_hash(ANA) and len(event.phone_hash) == 64


def test_same_message_twice_changes_nothing(hook_app):
    campaign_id = _campaign(hook_app)
    owner = _owner_of(hook_app, campaign_id)
    client = hook_app.test_client()
    assert _inbound(client, "STOP", sid="SM1" + "0" * 31).status_code == 200
    assert _inbound(client, "STOP", sid="SM1" + "0" * 31).status_code == 200
    assert len(_events(hook_app)) == 1 and _suppressions(hook_app) == {(owner, "00")}
    # START, then the STOP delivered once more: still opted in.
    assert _inbound(client, "START", sid="SM2" + "0" * 31).status_code == 200
    assert _suppressions(hook_app) == set()
    assert _inbound(client, "STOP", sid="SM1" + "0" * 31).status_code == 200
    assert _suppressions(hook_app) == set()
    assert [e.action for e in _events(hook_app)] == ["opt_out", "opt_in"]


def test_reply_counts_for_every_owner_that_texted_the_number(hook_app):
    first = _campaign(hook_app, "a@example.com")
    second = _campaign(hook_app, "a@example.com", people=f"phone\n{ANA}\n")  # later, same owner
    other = _campaign(hook_app, "b@example.com", people=f"phone\n{ANA}\n{BEN}\n")
    not_sent = _campaign(hook_app, "c@example.com", people=f"phone\n{ANA}\n", sent=False)
    a, b, c = (_owner_of(hook_app, i) for i in (first, other, not_sent))
    client = hook_app.test_client()
    assert _inbound(client, "quit").status_code == 200
    assert _suppressions(hook_app) == {(a, "00"), (b, "00")}
    events = {e.owner_id: e for e in _events(hook_app)}
    assert sorted(events) == sorted([a, b])
    assert events[a].campaign_id == second  # the latest message wins
    assert events[b].campaign_id == other
    with hook_app.app_context():
        from flask_smstrack.sms.suppression import is_suppressed

        assert is_suppressed(a, ANA) and is_suppressed(b, ANA)
        assert not is_suppressed(c, ANA)  # c never texted Ana
        assert not is_suppressed(a, BEN)

    # A number no campaign texted: suppressed for every owner.
    assert _inbound(client, "STOP", sid="SM" + "b" * 32, phone=STRANGER).status_code == 200
    assert (EVERY_OWNER, "99") in _suppressions(hook_app)
    with hook_app.app_context():
        assert is_suppressed(c, STRANGER) and is_suppressed(None, STRANGER)

    # START takes the number off the lists of the owners that texted it
    # and off the every-owner list.
    with hook_app.app_context():
        from flask_smstrack.sms.optouts import opt_out

        opt_out([ANA], EVERY_OWNER, source="cli")
    assert _inbound(client, "Yes", sid="SM" + "c" * 32).status_code == 200
    assert _suppressions(hook_app) == {(EVERY_OWNER, "99")}
    assert Counter(e.action for e in _events(hook_app)) == {"opt_out": 4, "opt_in": 2}


def test_forgotten_number_is_attributed_by_its_hash(hook_app):
    campaign_id = _campaign(hook_app)
    with hook_app.app_context():
        from flask_smstrack.sms.suppression import phone_hash

        db = _db()
        db.session.execute(
            update(Recipient).where(Recipient.phone == BEN).values(phone=None, phone_hash=phone_hash(BEN), phone_tail="01")
        )
        db.session.commit()
    assert _inbound(hook_app.test_client(), "STOP", phone=BEN).status_code == 200
    [event] = _events(hook_app)
    assert event.campaign_id == campaign_id and event.owner_id == _owner_of(hook_app, campaign_id)


def test_help_is_recorded_only(hook_app):
    _campaign(hook_app)
    assert _inbound(hook_app.test_client(), "HELP").status_code == 200
    assert [e.action for e in _events(hook_app)] == ["help"]
    assert _suppressions(hook_app) == set()


@pytest.mark.parametrize("body", ["Thanks!", "", "stop it now", "   "])
def test_other_messages_are_stored_nowhere(hook_app, body):
    _campaign(hook_app)
    response = _inbound(hook_app.test_client(), body)
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert _events(hook_app) == [] and _suppressions(hook_app) == set()


def test_advanced_opt_out_through_the_webhook(hook_app):
    _campaign(hook_app)
    client = hook_app.test_client()
    assert _inbound(client, "Arrêt", OptOutType="STOP").status_code == 200
    assert len(_suppressions(hook_app)) == 1
    assert _inbound(client, "Hola", sid="SM" + "d" * 32, OptOutType="START").status_code == 200
    assert _suppressions(hook_app) == set()
    assert [(e.action, e.keyword) for e in _events(hook_app)] == [("opt_out", "ARRÊT"), ("opt_in", "HOLA")]


def test_bad_signature_is_refused_and_stores_nothing(hook_app):
    _campaign(hook_app)
    client = hook_app.test_client()
    forged = _inbound(client, "STOP", token="not-the-token")
    assert forged.status_code == 403
    assert "X-Twilio-Signature" in forged.json["errors"]
    unsigned = client.post(INBOUND, data={"MessageSid": "SM" + "e" * 32, "From": ANA, "Body": "STOP"})
    assert unsigned.status_code == 403
    assert _events(hook_app) == [] and _suppressions(hook_app) == set()


def test_keyword_without_sender_or_sid_is_refused(hook_app):
    client = hook_app.test_client()
    assert _inbound(client, "STOP", phone="not a number").json["errors"]["From"]
    assert _inbound(client, "STOP", sid="").json["errors"]["MessageSid"]
    assert _events(hook_app) == []


# -- the CLI ----------------------------------------------------------------


def test_cli_opt_out_and_remove(app):
    runner = app.test_cli_runner()
    Actions(app).user("shop@example.com")
    result = runner.invoke(args=["smstrack", "opt-out", "(415) 555-0100", "+14155550101", "--owner", "shop@example.com"])
    assert result.exit_code == 0, result.output
    assert "2 added to the opt-out list of owner" in result.output
    again = runner.invoke(args=["smstrack", "opt-out", "415-555-0100", "--owner", "shop@example.com"])
    assert "0 added" in again.output and "1 already on it" in again.output
    everyone = runner.invoke(args=["smstrack", "opt-out", "+442079460123", "nonsense", "12"])
    assert everyone.exit_code == 1
    assert "1 added to the opt-out list of every owner" in everyone.output
    assert "'nonsense' is not a phone number" in everyone.output
    assert "2 not a valid phone number" in everyone.output
    removed = runner.invoke(args=["smstrack", "opt-out", "+14155550100", "--remove", "--owner-id", "1"])
    assert removed.exit_code == 0 and "1 removed" in removed.output
    assert _suppressions(app) == {("1", "01"), (EVERY_OWNER, "23")}
    assert [e.source for e in _events(app)] == ["cli"] * 4
    both = runner.invoke(args=["smstrack", "opt-out", ANA, "--owner", "shop@example.com", "--owner-id", "2"])
    assert both.exit_code == 2


def test_cli_import_opt_outs(app, tmp_path):
    runner = app.test_cli_runner()
    path = tmp_path / "stops.csv"
    path.write_text("Mobile;name\n(415) 555-0100;A\n+14155550101;B\n4155550100;A again\noops;C\n\n", encoding="utf-8")
    result = runner.invoke(args=["smstrack", "import-opt-outs", str(path), "--owner-id", "7"])
    assert result.exit_code == 0, result.output
    assert "2 added to the opt-out list of owner 7; 0 already on it; 1 invalid." in result.output
    assert "line 5: 'oops' is not a phone number" in result.output
    assert _suppressions(app) == {("7", "00"), ("7", "01")}
    assert {e.source for e in _events(app)} == {"import"}
    bad = tmp_path / "bad.csv"
    bad.write_text("name\nA\n", encoding="utf-8")
    failed = runner.invoke(args=["smstrack", "import-opt-outs", str(bad)])
    assert failed.exit_code == 1 and "no phone column" in failed.output


# -- the API ----------------------------------------------------------------


def test_api_opt_outs(app):
    actions = Actions(app)
    key = actions.api_key("shop@example.com")
    other = actions.api_key("other@example.com")
    added = actions.api("POST", "/opt-outs", key, json={"phones": [ANA, "(415) 555-0101", "bad", ANA]})
    assert added.status_code == 200
    assert added.json == {"added": 2, "already": 0, "invalid": [{"phone": "bad", "message": "'bad' is not a phone number"}]}
    again = actions.api("POST", "/opt-outs", key, json={"phones": ["020 7946 0000"], "region": "GB"})
    assert again.json["added"] == 1
    listed = actions.api("GET", "/opt-outs?per_page=2", key)
    assert listed.status_code == 200
    assert (listed.json["total"], listed.json["pages"], listed.json["page"]) == (3, 2, 1)
    assert [e["phone_tail"] for e in listed.json["opt_outs"]] == ["00", "01"]
    entry = listed.json["opt_outs"][0]
    assert set(entry) == {"id", "phone_tail", "source", "keyword", "created_at", "every_owner"}
    assert (entry["source"], entry["keyword"], entry["every_owner"]) == ("api", None, False)
    assert "phone" not in entry and "phone_hash" not in entry
    assert actions.api("GET", "/opt-outs?page=2&per_page=2", key).json["opt_outs"][0]["phone_tail"] == "00"
    # Another owner sees none of them.
    assert actions.api("GET", "/opt-outs", other).json["total"] == 0
    removed = actions.api("POST", "/opt-outs/remove", key, json={"phones": [ANA, CY]})
    assert removed.json == {"removed": 1, "absent": 1, "invalid": []}
    assert actions.api("GET", "/opt-outs", key).json["total"] == 2


@pytest.mark.parametrize("body, field, message", [
    ({}, "phones", "Missing data for required field."),
    ({"phones": []}, "phones", "Give from 1 to 1000 numbers."),
    ({"phones": "+14155550100"}, "phones", "Not a valid list."),
    ({"phones": ["1" * 65]}, "phones", "Item 0: Length must be between 1 and 64."),
    ({"phones": [ANA], "region": "gb"}, "region", "Must be a two-letter region code in capitals, e.g. US."),
    ({"phones": ["\x00"]}, "phones", "Must not contain NUL"),
])
def test_api_opt_outs_invalid_input(app, body, field, message):
    actions = Actions(app)
    key = actions.api_key()
    response = actions.api("POST", "/opt-outs", key, json=body)
    assert response.status_code == 400
    assert message in str(response.json["errors"][field])


def test_api_opt_outs_page_arguments(app):
    actions = Actions(app)
    key = actions.api_key()
    response = actions.api("GET", "/opt-outs?per_page=0", key)
    assert response.status_code == 400 and "per_page" in response.json["errors"]


def test_api_import_opt_outs(app):
    actions = Actions(app)
    key = actions.api_key()
    headers = {"Authorization": f"Bearer {key}"}
    body = "phone,why\n+14155550100,stop\n4155550101,asked\nnope,x\n"
    response = actions.client.post("/smstrack/api/v1/opt-outs/import", data=body, content_type="text/csv",
                                   headers=headers)
    assert response.status_code == 200
    assert response.json == {"added": 2, "already": 0,
                             "invalid": [{"line": 4, "message": "'nope' is not a phone number"}]}
    wrong = actions.client.post("/smstrack/api/v1/opt-outs/import", data="x\n1\n", content_type="text/csv",
                                headers=headers)
    assert wrong.status_code == 400 and "no phone column" in wrong.json["errors"]["_body"][0]
    json_body = actions.api("POST", "/opt-outs/import", key, json={"phones": [ANA]})
    assert json_body.status_code == 415


# -- preparing, exporting and sending ---------------------------------------


def test_import_marks_suppressed_numbers(app):
    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key, message_template="Hi {link}")
    assert actions.api("POST", "/opt-outs", key, json={"phones": [BEN]}).json["added"] == 1
    with app.app_context():
        from flask_smstrack.sms.optouts import opt_out

        opt_out([CY], EVERY_OWNER, source="cli")
    response = actions.client.post(f"/smstrack/api/v1/campaigns/{campaign['id']}/recipients", data=PEOPLE,
                                   content_type="text/csv", headers={"Authorization": f"Bearer {key}"})
    assert (response.json["imported"], response.json["suppressed"]) == (3, 2)
    assert _statuses(app, campaign["id"]) == {ANA: "pending", BEN: "suppressed", CY: "suppressed"}


def test_cli_import_says_how_many_opted_out(app, tmp_path):
    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key, message_template="Hi {link}")
    with app.app_context():
        from flask_smstrack.sms.optouts import opt_out

        opt_out([ANA, BEN], EVERY_OWNER, source="cli")
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE, encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["smstrack", "import-recipients", str(campaign["id"]), str(path)])
    assert "Imported 3 recipients" in result.output
    assert "2 of them opted out and will not be texted." in result.output


def test_prepare_and_export_skip_suppressed_and_start_brings_back(make_app):
    app = make_app(SMSTRACK_TWILIO_AUTH_TOKEN=TOKEN, SMSTRACK_BASE_URL="https://go.example.com")
    campaign_id = _campaign(app, sent=False)
    actions = Actions(app)
    key = actions.api_key()
    prepared = actions.api("POST", f"/campaigns/{campaign_id}/messages/prepare", key)
    assert (prepared.json["prepared"], prepared.json["suppressed"], prepared.json["ready"]) == (3, 0, 3)
    # Ben opts out after the messages were written (a STOP to an earlier campaign).
    with app.app_context():
        from flask_smstrack.sms.optouts import opt_in, opt_out

        opt_out([BEN], _owner_of(app, campaign_id), source="dashboard")
    listed = actions.api("GET", f"/campaigns/{campaign_id}/messages?format=json", key)
    assert [m["phone"] for m in listed.json["messages"]] == [ANA, CY]
    prepared = actions.api("POST", f"/campaigns/{campaign_id}/messages/prepare", key)
    assert (prepared.json["prepared"], prepared.json["suppressed"], prepared.json["ready"]) == (2, 1, 2)
    assert _statuses(app, campaign_id)[BEN] == "suppressed"
    exported = actions.api("POST", f"/campaigns/{campaign_id}/messages/export", key)
    assert [line.split(",")[0] for line in exported.get_data(as_text=True).splitlines()[1:]] == [ANA, CY]
    assert _statuses(app, campaign_id) == {ANA: "exported", CY: "exported", BEN: "suppressed"}
    with app.app_context():
        campaign = _db().session.get(Campaign, campaign_id)
        assert campaign.messages_sent() == 2 and campaign.message_counts()[0] == 2
    report = actions.report(key, campaign_id)
    assert report["sent"] == 2
    # Ben opts back in: the next prepare writes his message again.
    with app.app_context():
        opt_in([BEN], _owner_of(app, campaign_id), source="dashboard")
    prepared = actions.api("POST", f"/campaigns/{campaign_id}/messages/prepare", key)
    assert (prepared.json["prepared"], prepared.json["suppressed"], prepared.json["ready"]) == (1, 0, 1)
    assert _statuses(app, campaign_id)[BEN] == "ready"


def test_send_skips_suppressed_and_rechecks_each_message(make_app):
    from flask_smstrack.sms.sending import send_campaign

    with FakeTwilio() as fake:
        app = make_app(
            SMSTRACK_BASE_URL="https://go.example.com", SMSTRACK_TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            SMSTRACK_TWILIO_AUTH_TOKEN=AUTH_TOKEN, SMSTRACK_TWILIO_FROM="+15005550006",
            SMSTRACK_TWILIO_API_URL=fake.url, SMSTRACK_SEND_RATE=1000,
        )
        campaign_id = _campaign(app, sent=False)
        owner = _owner_of(app, campaign_id)
        with app.app_context():
            from flask_smstrack.sms.messages import prepare_messages
            from flask_smstrack.sms.optouts import opt_out

            db = _db()
            campaign = db.session.get(Campaign, campaign_id)
            prepare_messages(campaign)
            opt_out([ANA], owner, source="api")
            # Cy opts out while the send is under way: after Ana's turn.
            ticks = []

            def progress(n):
                ticks.append(n)
                if len(ticks) == 1:
                    opt_out([CY], owner, source="api")

            result = send_campaign(campaign, progress=progress)
            # Ana was held when the send prepared the campaign; Cy at her turn.
            assert (result.sent, result.suppressed) == (1, 1)
            assert db.session.execute(
                select(func.count()).where(Recipient.campaign_id == campaign_id, Recipient.sent_at.is_not(None))
            ).scalar_one() == 1
        assert Counter(r.form["To"] for r in fake.creates) == {BEN: 1}
        assert _statuses(app, campaign_id) == {ANA: "suppressed", BEN: "queued", CY: "suppressed"}
