"""The campaign page's Messages card as its users see it: recipients per
status, segments and cost, forwards, "Prepare messages", the messages CSV,
the A/B test with its verdicts, and the recipients for the next send."""
from __future__ import annotations

import csv
import html
import io
import re

import pytest
from sqlalchemy import select, update

from conftest import DESKTOP, click_id_of
from flask_smstrack.models import Recipient
from flask_smstrack.schemas import AUDIENCE_SEGMENTS
from flask_smstrack.web.dashboard.messages import AUDIENCE_LABELS
from test_dashboard import csrf_token, login, rows_of

BASE = "https://sms.example.com"
LONG = (
    "{first_name}, the spring sale ends tonight at midnight: everything in store is 30% off and delivery "
    "is free on orders over 20 dollars. Tap to shop: {link}"
)


def _people(n: int) -> str:
    return "phone,first_name\n" + "".join(f"+1415555{100 + i:04d},P{i}\n" for i in range(n))


def _setup(sms, *, variants=(("A", "Hi {first_name}, 20% off today: {link}"), ("B", LONG)), people=12,
           template=None, price="0.0079") -> tuple[str, int]:
    """A campaign priced per segment, with one link, variants and imported
    recipients, made through the API."""
    key = sms.api_key()
    fields = {"cost": None, "sent": None, "cost_per_segment": price}
    if template:
        fields["message_template"] = template
    campaign = sms.campaign(key, **fields)
    sms.link(key, campaign["id"])
    for name, text in variants:
        made = sms.api("POST", f"/campaigns/{campaign['id']}/variants", key, json={"name": name, "message_template": text})
        assert made.status_code == 201, made.json
    if people:
        imported = sms.api("POST", f"/campaigns/{campaign['id']}/recipients", key, data=_people(people),
                           content_type="text/csv", json=None)
        assert imported.json["imported"] == people
    return key, campaign["id"]


def _text(fragment: str) -> str:
    """HTML as the words a reader sees."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _card(page: str) -> str:
    match = re.search(r'<section class="st-card" id="messages".*?</section>', page, re.S)
    assert match, "no Messages card on the page"
    return match.group(0)


def _statuses(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-status="(\w+)">.*?<strong class="st-status-count">([^<]+)</strong>', page))


def _facts(page: str) -> dict[str, tuple[str, str]]:
    """The card's facts: label -> (value, hint)."""
    found = re.findall(
        r'<dt>([^<]+)</dt><dd class="st-fact-value">([^<]*)</dd><dd class="st-fact-hint">(.*?)</dd>', page
    )
    return {label: (html.unescape(value), _text(hint)) for label, value, hint in found}


def _flashes(page: str) -> list[tuple[str, str]]:
    return [(cls.strip(), _text(text)) for cls, text in re.findall(r'<p class="st-flash([^"]*)" role="\w+">(.*?)</p>', page)]


def _ab_rows(page: str) -> list[list[str]]:
    table = re.search(r'<table class="[^"]*st-table-abtest".*?</table>', page, re.S).group(0)
    body = table.split("<tbody>", 1)[1]
    return [[_text(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def _ab_header(page: str) -> list[str]:
    table = re.search(r'<table class="[^"]*st-table-abtest".*?</thead>', page, re.S).group(0)
    return [_text(cell) for cell in re.findall(r"<th scope=\"col\">(.*?)</th>", table, re.S)]


def _verdicts(page: str) -> list[str]:
    return [_text(v) for v in re.findall(r'<p class="st-verdict[^"]*">(.*?)</p>', page, re.S)]


def _prepare(client, campaign_id: int):
    token = csrf_token(client, f"/smstrack/campaigns/{campaign_id}")
    return client.post(f"/smstrack/campaigns/{campaign_id}/messages/prepare", data={"csrf_token": token})


def _export(client, campaign_id: int):
    """Press "Export messages (CSV)": the ready messages count as sent."""
    token = csrf_token(client, f"/smstrack/campaigns/{campaign_id}")
    return client.post(f"/smstrack/campaigns/{campaign_id}/messages/export", data={"csrf_token": token})


def _codes(client, campaign_id: int) -> dict[str, tuple[str, str]]:
    """phone -> (the recipient's own short code, variant), from the exported messages."""
    rows = csv.DictReader(io.StringIO(_export(client, campaign_id).text))
    return {r["phone"]: (r["message"].rsplit("/", 1)[1], r["variant"]) for r in rows}


# -- the card -------------------------------------------------------------------


def test_no_card_without_recipients_or_variants(sms, sms_app):
    key, campaign_id = _setup(sms, variants=(), people=0, template="Hi {link}")
    page = login(sms_app).get(f"/smstrack/campaigns/{campaign_id}").text
    assert 'id="messages"' not in page and "Prepare messages" not in page


def test_variants_without_recipients_say_what_to_do(sms, sms_app):
    key, campaign_id = _setup(sms, people=0)
    card = _card(login(sms_app).get(f"/smstrack/campaigns/{campaign_id}").text)
    assert "No recipients yet. Import a CSV file with a phone column" in _text(card)
    assert "Prepare messages" not in _text(card).replace("press “Prepare messages”", "")
    assert "Download messages (CSV)" not in card and "Recipients for the next send" not in card
    # The A/B test is there, waiting for data.
    assert [row[0] for row in _ab_rows(card)] == ["A", "B"]
    assert _verdicts(card)[0].startswith("Too early to call on CTR: each variant needs at least 100 delivered messages")
    assert _facts(card)["Cost"] == ("–", "0.0079 USD per segment, once messages are written")


def test_prepare_messages_from_the_page(sms, sms_app):
    key, campaign_id = _setup(sms)
    client = login(sms_app)
    page = client.get(f"/smstrack/campaigns/{campaign_id}").text
    card = _card(page)
    assert "12 recipients, 12 without a message yet: press “Prepare messages” to write them." in _text(card)
    assert _statuses(card) == {
        "pending": "12", "ready": "0", "suppressed": "0", "exported": "0", "sending": "0", "queued": "0", "sent": "0",
        "delivered": "0", "undelivered": "0", "failed": "0",
    }
    assert "Download messages (CSV)" not in card and "Recipients for the next send" not in card

    response = _prepare(client, campaign_id)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/smstrack/campaigns/{campaign_id}#messages"
    page = client.get(response.headers["Location"]).text
    # B's link takes its long text past 160 characters: one more segment each.
    assert _flashes(page) == [
        ("", "12 messages ready (A: 6, B: 6); the short link pushes 6 messages into another segment.")
    ]
    card = _card(page)
    assert "without a message yet" not in card
    assert _statuses(card)["pending"] == "0" and _statuses(card)["ready"] == "12"
    facts = _facts(card)
    assert facts["Messages sent"][0] == "0"
    # 18 segments x 0.0079 USD = 0.1422 USD, once sent.
    assert facts["Ready to send"] == ("12", "18 segments, 0.14 USD")
    assert facts["Forwards"] == ("0", "clicks from a second device: the message was passed on — not counted in CTR")
    assert "Export messages (CSV)" in card and "Download messages (CSV)" not in card
    # Downloading the file changes nothing; exporting it for another platform counts the messages as sent.
    assert client.get(f"/smstrack/campaigns/{campaign_id}/messages.csv").status_code == 200
    assert _statuses(_card(client.get(f"/smstrack/campaigns/{campaign_id}").text))["ready"] == "12"
    exported = _export(client, campaign_id)
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert exported.text == client.get(f"/smstrack/campaigns/{campaign_id}/messages.csv").text
    card = _card(client.get(f"/smstrack/campaigns/{campaign_id}").text)
    facts = _facts(card)
    assert _statuses(card)["exported"] == "12" and "Ready to send" not in facts
    assert facts["Messages sent"][0] == "12"
    assert facts["Segments"][0] == "18"
    assert facts["Cost"] == ("0.14 USD", "18 segments × 0.0079 USD")
    assert "CTR = unique clicks ÷ sent (12) until delivery receipts arrive, then ÷ reached (sent minus undelivered)." in _text(card)
    assert "Download messages (CSV)" in card and "Export messages (CSV)" not in card
    assert "Recipients for the next send" in card

    # Once exported, preparing again changes nothing.
    before = client.get(f"/smstrack/campaigns/{campaign_id}/messages.csv").text
    again = client.get(_prepare(client, campaign_id).headers["Location"]).text
    assert _flashes(again)[0][1] == "Every message is already sent or exported: there is nothing left to prepare."
    assert client.get(f"/smstrack/campaigns/{campaign_id}/messages.csv").text == before


def test_messages_csv_is_the_messages(sms, sms_app):
    key, campaign_id = _setup(sms)
    client = login(sms_app)
    _prepare(client, campaign_id)
    response = client.get(f"/smstrack/campaigns/{campaign_id}/messages.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == f'attachment; filename="campaign-{campaign_id}-messages.csv"'
    assert response.headers["Cache-Control"] == "private, no-store"
    header, *rows = rows_of(response.text)
    assert header == ["phone", "message", "variant"]
    assert [r[0] for r in rows] == [f"+1415555{100 + i:04d}" for i in range(12)]
    assert sorted(r[2] for r in rows) == ["A"] * 6 + ["B"] * 6
    for phone, message, variant in rows:
        name = f"P{int(phone[-4:]) - 100}"
        assert message.startswith(f"Hi {name}, 20% off today: {BASE}/s/" if variant == "A" else f"{name}, the spring sale")
    assert response.text == sms.api("GET", f"/campaigns/{campaign_id}/messages", key).text


def test_receipts_make_delivered_the_ctr_denominator(sms, sms_app):
    key, campaign_id = _setup(sms, variants=(), template="Hi {first_name} {link}")
    client = login(sms_app)
    _prepare(client, campaign_id)
    with sms_app.app_context():
        from wsgi import db

        r = Recipient.__table__.c
        for i in range(12):
            status, sid = ("delivered", f"SM{i}") if i < 9 else ("undelivered", f"SM{i}") if i < 11 else ("failed", None)
            db.session.execute(update(Recipient).where(r.phone == f"+1415555{100 + i:04d}").values(status=status, message_sid=sid))
        db.session.commit()
    card = _card(client.get(f"/smstrack/campaigns/{campaign_id}").text)
    statuses = _statuses(card)
    assert (statuses["delivered"], statuses["undelivered"], statuses["failed"], statuses["ready"]) == ("9", "2", "1", "0")
    # Refused before sending: not a message, not paid for.
    assert _facts(card)["Messages sent"][0] == "11"
    assert (
        "CTR = unique clicks ÷ reached (9: sent minus undelivered): delivery receipts came for 11 of "
        "11 messages, 9 delivered and 2 not." in _text(card)
    )
    assert "A/B test" not in card  # one message, no test


def test_forwards_are_shown_apart(sms, sms_app):
    key, campaign_id = _setup(sms)
    client = login(sms_app)
    _prepare(client, campaign_id)
    code, _ = _codes(client, campaign_id)["+14155550100"]
    sms.click(code)
    sms.click(code, ua=DESKTOP, ip="90.12.1.1", client=sms_app.test_client())  # passed on to a laptop
    page = client.get(f"/smstrack/campaigns/{campaign_id}").text
    assert _facts(_card(page))["Forwards"][0] == "1"
    assert re.search(r'<span class="st-step-label">Unique clicks</span>\s*<span class="st-step-value">1</span>', page)


def test_prepare_error_is_flashed(sms, sms_app):
    key, campaign_id = _setup(sms, variants=())  # recipients, but nothing to say
    client = login(sms_app)
    page = client.get(_prepare(client, campaign_id).headers["Location"]).text
    assert _flashes(page) == [
        ("st-flash-error", "Messages not prepared — the campaign has no message: give it a message template or variants.")
    ]
    assert '<p class="st-flash st-flash-error" role="alert">' in page
    assert _statuses(_card(page))["pending"] == "12"


def test_prepare_without_recipients_says_so(sms, sms_app):
    key, campaign_id = _setup(sms, people=0)
    client = login(sms_app)
    token = csrf_token(client, f"/smstrack/campaigns/{campaign_id}")
    response = client.post(f"/smstrack/campaigns/{campaign_id}/messages/prepare", data={"csrf_token": token})
    page = client.get(response.headers["Location"]).text
    assert _flashes(page)[0][1].startswith("This campaign has no recipients yet: import them")


# -- the A/B test -----------------------------------------------------------------


def test_ab_test_table_and_verdict(sms, sms_app):
    key, campaign_id = _setup(sms, variants=(("A", "Hi {first_name}: {link}"), ("B", "{first_name}, 30% off: {link}")),
                              people=400)
    client = login(sms_app)
    _prepare(client, campaign_id)
    codes = _codes(client, campaign_id)
    by_variant = {"A": [], "B": []}
    for phone, (code, variant) in codes.items():
        by_variant[variant].append(code)
    assert (len(by_variant["A"]), len(by_variant["B"])) == (200, 200)
    # 10 of A's 200 tap their link, 40 of B's.
    for code in by_variant["A"][:10] + by_variant["B"][:40]:
        assert sms.click(code, client=sms_app.test_client()).status_code == 302
    page = client.get(f"/smstrack/campaigns/{campaign_id}").text
    card = _card(page)
    verdicts = _verdicts(card)
    assert verdicts[0] == "B beats A on CTR: 20.0% vs 5.0% (p < 0.001, >99.9% probability to be better)."
    assert verdicts[1].startswith("Too early to call on conversion rate")
    assert 'class="st-verdict st-verdict-called"' in card
    # The verdicts come before the table.
    assert card.index("st-verdicts") < card.index("st-table-abtest")
    assert _ab_header(card) == [
        "Variant", "Weight", "Sent", "Segments", "Unique clicks", "CTR", "CTR p-value", "Chance CTR beats A",
        "Conversions", "Conversion rate", "Conversion p-value", "Chance conversion rate beats A",
        "Revenue (USD)", "Cost (USD)",
    ]
    a, b = _ab_rows(card)
    assert a == ["A", "1", "200", "200", "10", "5.0%", "baseline", "baseline", "0", "0.0%", "baseline", "baseline",
                 "0.00", "1.58"]
    assert b[:8] == ["B", "1", "200", "200", "40", "20.0%", "< 0.001", "> 99.9%"]
    assert b[8:10] == ["0", "0.0%"] and b[12:] == ["0.00", "1.58"]
    # A bar per variant, the best one full width.
    bars = re.findall(r'<span class="st-hbar-label">Variant (\w)</span>\s*<span class="st-hbar-track"><span class="st-hbar st-w-(\d+)"></span></span>\s*<span class="st-hbar-value">([^<]+)<', card)
    assert bars == [("A", "25", "5.0% "), ("B", "100", "20.0% ")]
    # The table downloads as CSV, like every other table.
    link = f'href="/smstrack/campaigns/{campaign_id}/tables/variant_test.csv"'
    assert link in card
    header, *rows = rows_of(client.get(f"/smstrack/campaigns/{campaign_id}/tables/variant_test.csv").text)
    assert header[:6] == ["variant", "weight", "audience", "segments", "unique_clicks", "ctr"]
    assert [row[:6] for row in rows] == [["A", "1", "200", "200", "10", "0.05"], ["B", "1", "200", "200", "40", "0.2"]]


# -- recipients for the next send ---------------------------------------------------


def test_audience_labels_cover_every_segment():
    segments = ["all", "clicked", "clicked_not_converted", "not_clicked", "converted"]
    assert list(AUDIENCE_SEGMENTS) == segments
    assert sorted(AUDIENCE_LABELS) == sorted(segments)


def test_recipients_for_the_next_send(sms, sms_app):
    key, campaign_id = _setup(sms)
    client = login(sms_app)
    _prepare(client, campaign_id)
    codes = _codes(client, campaign_id)
    bought = sms.click(codes["+14155550100"][0], client=sms_app.test_client())
    sms.click(codes["+14155550101"][0], ua=DESKTOP, client=sms_app.test_client())
    body = {"type": "conversion", "click_id": click_id_of(bought), "event": "purchase", "revenue": "12.00",
            "currency": "USD", "order_id": "o-1"}
    assert sms.collect(body).status_code == 202

    card = _card(client.get(f"/smstrack/campaigns/{campaign_id}").text)
    links = re.findall(r'<a class="st-csv" href="([^"]+segment=\w+)" download>([^<]+)<', card)
    assert [html.unescape(label) for _, label in links] == [
        "Clicked, did not convert", "Did not click", "Converted", "Clicked", "Everyone"
    ]

    def phones(url: str) -> list[str]:
        response = client.get(html.unescape(url))
        assert response.status_code == 200, response.text
        assert response.mimetype == "text/csv"
        return [row["phone"] for row in csv.DictReader(io.StringIO(response.text))]

    everyone = [f"+1415555{100 + i:04d}" for i in range(12)]
    assert [phones(url) for url, _ in links] == [
        ["+14155550101"], everyone[2:], ["+14155550100"], everyone[:2], everyone,
    ]
    url = links[0][0]
    response = client.get(html.unescape(url))
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="campaign-{campaign_id}-clicked_not_converted.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["phone"], r["first_name"], r["variant"], r["device"], r["converted"]) for r in rows] == [
        ("+14155550101", "P1", codes["+14155550101"][1], "desktop", "no")
    ]
    # The same file as the API's.
    api = sms.api("GET", f"/campaigns/{campaign_id}/recipients?segment=clicked_not_converted&format=csv", key)
    assert response.text == api.text
    # Narrowed by variant, device and country (the form's empty fields are ignored).
    base = f"/smstrack/campaigns/{campaign_id}/recipients.csv"
    ana_variant = codes["+14155550100"][1]
    assert phones(f"{base}?segment=clicked&variant={ana_variant}&device=&country=") == [
        p for p in everyone[:2] if codes[p][1] == ana_variant
    ]
    assert phones(f"{base}?segment=clicked&device=desktop") == ["+14155550101"]
    assert phones(f"{base}?segment=all&country=gb") == everyone[:2]
    assert phones(f"{base}") == everyone


@pytest.mark.parametrize("query,field", [("segment=everyone", "segment"), ("segment=clicked&country=Gondor", "country")])
def test_bad_audience_is_400_naming_the_parameter(sms, sms_app, query, field):
    key, campaign_id = _setup(sms)
    client = login(sms_app)
    response = client.get(f"/smstrack/campaigns/{campaign_id}/recipients.csv?{query}")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    text = _text(response.text)
    assert f"These recipients cannot be downloaded. “{field}”:" in text


# -- access --------------------------------------------------------------------------


def test_messages_routes_need_login(sms, sms_app):
    key, campaign_id = _setup(sms)
    client = sms_app.test_client()
    base = f"/smstrack/campaigns/{campaign_id}"
    for response in (
        client.get(f"{base}/messages.csv"),
        client.get(f"{base}/recipients.csv?segment=all"),
        client.post(f"{base}/messages/prepare"),
        client.post(f"{base}/messages/export"),
    ):
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/smstrack/login?next=")


def test_another_users_campaign_is_404(sms, sms_app):
    key, campaign_id = _setup(sms)
    login(sms_app).get(f"/smstrack/campaigns/{campaign_id}")
    _prepare(login(sms_app), campaign_id)
    sms.user("other@example.com")
    other = login(sms_app, "other@example.com")
    base = f"/smstrack/campaigns/{campaign_id}"
    token = csrf_token(other, "/smstrack/campaigns/new")
    assert other.post(f"{base}/messages/prepare", data={"csrf_token": token}).status_code == 404
    assert other.post(f"{base}/messages/export", data={"csrf_token": token}).status_code == 404
    assert other.get(f"{base}/messages.csv").status_code == 404
    recipients = other.get(f"{base}/recipients.csv?segment=all")
    assert recipients.status_code == 404 and "+1415555" not in recipients.text
    assert other.get(base).status_code == 404
    # An admin sees it.
    sms.user("boss@example.com", admin=True)
    boss = login(sms_app, "boss@example.com")
    assert boss.get(f"{base}/messages.csv").text.count("\n") == 13


@pytest.mark.parametrize("token", [None, "expired-or-forged"])
@pytest.mark.parametrize("action,button,status", [
    ("prepare", "Prepare messages", "pending"),
    # Exporting changes the messages' status: a page of another site cannot do it.
    ("export", "Export messages (CSV)", "ready"),
])
def test_forms_without_a_valid_token_are_400(sms, sms_app, token, action, button, status):
    key, campaign_id = _setup(sms)
    client = login(sms_app)
    if action == "export":
        _prepare(client, campaign_id)
    data = {"csrf_token": token} if token else {}
    response = client.post(f"/smstrack/campaigns/{campaign_id}/messages/{action}", data=data)
    assert response.status_code == 400
    assert f"The form expired; please go back and press “{button}” again." in html.unescape(response.text)
    with sms_app.app_context():
        from wsgi import db

        assert set(db.session.execute(select(Recipient.status)).scalars()) == {status}
