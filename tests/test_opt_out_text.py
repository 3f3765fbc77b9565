"""The opt-out instruction check: what counts as one, the warnings in the
preview API, the campaign form and the CLI, and SMSTRACK_REQUIRE_OPT_OUT_TEXT
refusing to send."""
from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from conftest import Actions
from e2e.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from flask_smstrack.models import Campaign, Recipient
from flask_smstrack.sms.opt_out_text import OptOutTextMissing, has_opt_out_text
from flask_smstrack.sms.sending import send_campaign
from test_dashboard import login

BASE = "https://sms.example.com"
PEOPLE = "phone,first_name\n+14155550100,Ana\n+14155550101,Ben\n+14155550102,Cy\n"
WARNING = "No opt-out instruction: add one such as “Reply STOP to opt out”, so recipients know how to stop your messages."
REFUSED = (
    "No opt-out instruction: sending will be refused (SMSTRACK_REQUIRE_OPT_OUT_TEXT is on). "
    "Add one such as “Reply STOP to opt out”."
)


@pytest.mark.parametrize("text", [
    "Spring sale {link} Reply STOP to opt out",
    "20% off: {link}. stop? reply stop",
    "Sale! Txt STOP to end",
    "STOP.",
    "Reply UNSUBSCRIBE to leave",
    "Opt out: {link}",
    "opt-out at any time",
    "OPT  OUT anytime",
    "Optout: reply X",
    "(Stop=end)",
])
def test_opt_out_instructions(text):
    assert has_opt_out_text(text, keywords=[])


@pytest.mark.parametrize("text", [
    "Hi {first_name}, 20% off today: {link}",
    "STOPWATCH sale: 2 for 1 {link}",
    "Non-stop deals all week",
    "Bus stops near you",
    "You unsubscribed last year",
    "Stopped by? {link}",
    "Hi {stop}, sale {link}",
    "Unstoppable prices",
    "Choose your option out of 3",
    "",
])
def test_not_opt_out_instructions(text):
    assert not has_opt_out_text(text, keywords=[])


def test_localised_keywords():
    words = ["ARRET", "BAJA", "ARRÊTER"]
    assert has_opt_out_text("Soldes ! Répondez ARRET pour ne plus recevoir", keywords=words)
    assert has_opt_out_text("Rebajas {link} Responde baja", keywords=words)
    assert has_opt_out_text("Répondez arrêter", keywords=words)
    assert not has_opt_out_text("Soldes des arrets de bus", keywords=words)
    assert not has_opt_out_text("Rebajas hoy {link}", keywords=words)
    assert not has_opt_out_text("Répondez ARRET", keywords=[])


@pytest.mark.parametrize("configured", [["ARRET", "BAJA"], "ARRET, BAJA"], ids=["list", "string"])
def test_localised_keywords_from_config(make_app, configured):
    app = make_app(SMSTRACK_OPT_OUT_KEYWORDS=configured)
    with app.app_context():
        assert has_opt_out_text("Rebajas {link} responde BAJA")
        assert has_opt_out_text("Soldes {link} ARRET")
        assert not has_opt_out_text("Soldes {link}")


# -- the preview API ------------------------------------------------------------------


def _preview(sms, key, **body):
    response = sms.api("POST", "/messages/preview", key, json=body)
    assert response.status_code == 200, response.json
    return response.json


def test_preview_api_warns(sms):
    key = sms.api_key()
    assert _preview(sms, key, text="Hello")["warnings"] == [WARNING]
    assert _preview(sms, key, text="Hello, reply STOP to opt out")["warnings"] == []
    # With the link's own warning first.
    long = "A" * 140 + " {link}"
    both = _preview(sms, key, text=long)
    assert both["warning"].startswith("The short link takes this message from 1 to 2 segments")
    assert both["warnings"] == [both["warning"], WARNING]
    assert _preview(sms, key, text="A" * 130 + " {link} STOP=end")["warnings"] == [
        "The short link takes this message from 1 to 2 segments: shorten the text to pay for 1."
    ]
    campaign = sms.campaign(key)
    sms.link(key, campaign["id"])
    assert _preview(sms, key, text="Sale {link}", campaign_id=campaign["id"])["warnings"] == [WARNING]
    assert _preview(sms, key, text="Sale {link} STOP to end", campaign_id=campaign["id"])["warnings"] == []


def test_preview_api_says_sending_will_be_refused(make_app):
    app = make_app(SMSTRACK_BASE_URL=BASE, SMSTRACK_REQUIRE_OPT_OUT_TEXT=True)
    sms = Actions(app)
    key = sms.api_key()
    assert _preview(sms, key, text="Hello {link}")["warnings"] == [REFUSED]
    assert _preview(sms, key, text="Hello {link} Reply STOP to opt out")["warnings"] == []


def test_openapi_names_the_warnings(sms):
    spec = sms.client.get("/smstrack/api/v1/openapi.json").json
    described = spec["paths"]["/messages/preview"]["post"]["responses"]["200"]["description"]
    assert "warnings" in described
    report = spec["components"]["schemas"]["Report"]["properties"]
    assert report["opt_outs"]["type"] == "integer" and report["opt_out_rate"]["nullable"] is True


# -- the campaign form ----------------------------------------------------------------


def _opt_out_warnings(page: str) -> list[str]:
    return [html.unescape(w) for w in re.findall(r'<p class="st-warning" role="status" data-st-opt-out>([^<]+)</p>', page)]


def _with_variants(sms, key, variants):
    campaign = sms.campaign(key, message_template="Sale {link}")
    sms.link(key, campaign["id"])
    for name, text in variants:
        made = sms.api("POST", f"/campaigns/{campaign['id']}/variants", key, json={"name": name, "message_template": text})
        assert made.status_code == 201, made.json
    return campaign["id"]


def test_form_warns_per_message_without_blocking(sms, sms_app):
    key = sms.api_key()
    cid = _with_variants(sms, key, [("A", "Sale {link} Reply STOP to opt out"), ("B", "Sale ends tonight {link}")])
    client = login(sms_app)
    page = client.get(f"/smstrack/campaigns/{cid}/edit").text
    assert _opt_out_warnings(page) == [WARNING]
    row = re.search(r'<th scope="row">Variant B</th>.*?</tr>', page, re.S).group(0)
    assert "data-st-opt-out" in row
    # The live preview has a place for it too.
    assert 'data-live-warnings="variant_1_message_template"' in page
    # A warning, not an error: the campaign saves.
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    form = {
        "csrf_token": token, "name": "Spring sale", "currency": "USD", "cost": "10", "cost_per_message": "",
        "cost_per_segment": "", "sent": "", "sent_at": "", "message_template": "Sale {link}",
        "variant_0_id": "", "variant_0_name": "A", "variant_0_weight": "1",
        "variant_0_message_template": "Sale {link} Reply STOP to opt out",
        "variant_1_id": "", "variant_1_name": "B", "variant_1_weight": "1",
        "variant_1_message_template": "Sale ends tonight {link}",
    }
    saved = client.post(f"/smstrack/campaigns/{cid}/edit", data=form)
    assert saved.status_code == 302, saved.text


def test_new_campaign_form_preview_warns(sms, sms_app):
    sms.api_key()
    client = login(sms_app)
    page = client.get("/smstrack/campaigns/new").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    form = {"csrf_token": token, "name": "Spring", "currency": "USD", "cost": "", "cost_per_message": "",
            "cost_per_segment": "", "sent": "", "sent_at": "", "message_template": "Sale today {link}",
            "action": "preview"}
    shown = client.post("/smstrack/campaigns/new", data=form)
    assert shown.status_code == 200
    assert _opt_out_warnings(shown.text) == [WARNING]
    form["message_template"] = "Sale today {link} Reply STOP to opt out"
    assert _opt_out_warnings(client.post("/smstrack/campaigns/new", data=form).text) == []


def test_form_says_sending_will_be_refused(make_app):
    app = make_app(SMSTRACK_BASE_URL=BASE, SMSTRACK_REQUIRE_OPT_OUT_TEXT=True)
    sms = Actions(app)
    key = sms.api_key()
    cid = _with_variants(sms, key, [("A", "Sale {link}"), ("B", "Sale {link} STOP to end")])
    assert _opt_out_warnings(login(app).get(f"/smstrack/campaigns/{cid}/edit").text) == [REFUSED]


# -- the CLI --------------------------------------------------------------------------


def test_cli_create_campaign_and_add_variant_warn(sms, sms_app):
    runner = sms_app.test_cli_runner()
    made = runner.invoke(args=["smstrack", "create-campaign", "--name", "S", "--currency", "USD", "--quiet",
                               "--message", "Sale {link}"])
    assert made.exit_code == 0, made.output
    cid = int(made.stdout.strip())
    assert made.stderr == f"Warning: {WARNING}\n"
    fine = runner.invoke(args=["smstrack", "create-campaign", "--name", "T", "--currency", "USD", "--quiet",
                               "--message", "Sale {link} Reply STOP to opt out"])
    assert fine.exit_code == 0 and fine.stderr == ""
    plain = runner.invoke(args=["smstrack", "create-campaign", "--name", "U", "--currency", "USD", "--quiet"])
    assert plain.exit_code == 0 and plain.stderr == ""
    added = runner.invoke(args=["smstrack", "add-variant", str(cid), "A", "Hi {link}"])
    assert added.exit_code == 0, added.output
    assert added.stderr == f"Warning: {WARNING}\n"
    added = runner.invoke(args=["smstrack", "add-variant", str(cid), "B", "Hi {link} stop=end"])
    assert added.exit_code == 0 and added.stderr == ""


def _imported(sms, key, variants, template="Hi {first_name} {link}"):
    campaign = sms.campaign(key, cost=None, sent=None, cost_per_segment="0.0079", message_template=template)
    sms.link(key, campaign["id"])
    for name, text in variants:
        made = sms.api("POST", f"/campaigns/{campaign['id']}/variants", key, json={"name": name, "message_template": text})
        assert made.status_code == 201, made.json
    imported = sms.api("POST", f"/campaigns/{campaign['id']}/recipients", key, data=PEOPLE, content_type="text/csv",
                       json=None)
    assert imported.json["imported"] == 3
    return campaign["id"]


def test_cli_export_warns(sms, sms_app):
    key = sms.api_key()
    cid = _imported(sms, key, [("A", "Hi {link} Reply STOP to opt out"), ("B", "Hey {link}")])
    out = sms_app.test_cli_runner().invoke(args=["smstrack", "export-messages", str(cid)])
    assert out.exit_code == 0, out.output
    assert out.stderr.startswith(
        "Warning: Variant B has no opt-out instruction: add one such as “Reply STOP to opt out”.\n"
    )
    assert out.stdout.count("\n") == 4
    single = _imported(sms, key, [], template="Hi {link}")
    out = sms_app.test_cli_runner().invoke(args=["smstrack", "export-messages", str(single)])
    assert "Warning: The message has no opt-out instruction" in out.stderr


# -- sending --------------------------------------------------------------------------


@pytest.fixture
def fake():
    with FakeTwilio() as fake:
        yield fake


def _twilio_app(make_app, fake, **extra):
    return make_app(
        SMSTRACK_BASE_URL=BASE, SMSTRACK_TWILIO_ACCOUNT_SID=ACCOUNT_SID, SMSTRACK_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        SMSTRACK_TWILIO_FROM="+15005550006", SMSTRACK_TWILIO_API_URL=fake.url, SMSTRACK_SEND_RATE=1000, **extra,
    )


def _statuses(app, cid) -> list[str]:
    from wsgi import db

    with app.app_context():
        return sorted(db.session.execute(select(Recipient.status).where(Recipient.campaign_id == cid)).scalars())


@pytest.fixture(autouse=True)
def _no_twilio_env(no_twilio_env):
    """Twilio settings of the machine's environment stay out."""


def test_required_opt_out_text_refuses_send(make_app, fake):
    app = _twilio_app(make_app, fake, SMSTRACK_REQUIRE_OPT_OUT_TEXT=True)
    sms = Actions(app)
    key = sms.api_key()
    cid = _imported(sms, key, [("A", "Hi {link} Reply STOP to opt out"), ("B", "Hey {link}"), ("C", "Yo {link}")])
    result = app.test_cli_runner().invoke(args=["smstrack", "send", str(cid), "--yes"])
    assert result.exit_code == 1
    assert (
        f"Error: campaign {cid} not sent: variant B and variant C have no opt-out instruction and "
        "SMSTRACK_REQUIRE_OPT_OUT_TEXT is on. Add one such as “Reply STOP to opt out”"
    ) in result.stderr
    assert "Send 3 messages" not in result.output
    # Nothing was prepared, claimed or sent.
    assert fake.requests == []
    assert _statuses(app, cid) == ["pending"] * 3
    # The Python API refuses the same way.
    from wsgi import db

    with app.app_context():
        with pytest.raises(OptOutTextMissing, match=r"variant B and variant C have no opt-out instruction"):
            send_campaign(db.session.get(Campaign, cid))
    assert fake.requests == [] and _statuses(app, cid) == ["pending"] * 3
    # With the instruction added, the campaign goes.
    for name in ("B", "C"):
        variant = next(v for v in sms.api("GET", f"/campaigns/{cid}/variants", key).json["variants"] if v["name"] == name)
        assert sms.api("DELETE", f"/campaigns/{cid}/variants/{variant['id']}", key).status_code == 204
    made = sms.api("POST", f"/campaigns/{cid}/variants", key, json={"name": "B", "message_template": "Hey {link} STOP=end"})
    assert made.status_code == 201
    sent = app.test_cli_runner().invoke(args=["smstrack", "send", str(cid), "--yes"])
    assert sent.exit_code == 0, sent.output
    assert "Warning" not in sent.stderr
    assert len(fake.creates) == 3


def test_required_names_the_campaign_message(make_app, fake):
    app = _twilio_app(make_app, fake, SMSTRACK_REQUIRE_OPT_OUT_TEXT=True)
    sms = Actions(app)
    cid = _imported(sms, sms.api_key(), [])
    result = app.test_cli_runner().invoke(args=["smstrack", "send", str(cid), "--yes"])
    assert result.exit_code == 1
    assert f"campaign {cid} not sent: the message has no opt-out instruction" in result.stderr
    assert fake.requests == []


def test_without_the_setting_send_warns_and_sends(make_app, fake):
    app = _twilio_app(make_app, fake)
    sms = Actions(app)
    cid = _imported(sms, sms.api_key(), [])
    result = app.test_cli_runner().invoke(args=["smstrack", "send", str(cid), "--yes"])
    assert result.exit_code == 0, result.output
    assert "Warning: The message has no opt-out instruction: add one such as “Reply STOP to opt out”." in result.stderr
    assert len(fake.creates) == 3
