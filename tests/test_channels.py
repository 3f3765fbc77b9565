"""Campaigns in every channel: the channel of a campaign (API, dashboard,
CLI, migration), what only SMS campaigns have, the UTM medium of new
links, QR codes of links, and the channel comparison, the same in the
dashboard, the API and the CSV."""
from __future__ import annotations

import csv
import html
import io
import re
import struct
import xml.etree.ElementTree as ET
import zlib

import pytest
from sqlalchemy import text

from conftest import ANDROID, DESKTOP, click_id_of
from flask_smstrack.db.migrate import current_revision, downgrade, head_revision, upgrade
from test_dashboard import csrf_token, login

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG = "{http://www.w3.org/2000/svg}"


def _run(runner, *args):
    return runner.invoke(args=["smstrack", *args])


# -- the channel of a campaign ----------------------------------------------


def test_campaigns_made_before_channels_are_sms(app):
    from wsgi import db

    with app.app_context():
        downgrade("0010")
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO smstrack_campaigns (id, owner_id, name, currency, status, created_at)"
                " VALUES (1, '7', 'Spring', 'USD', 'draft', CURRENT_TIMESTAMP)"
            ))
        upgrade()
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT id, channel FROM smstrack_campaigns")).all()
        assert current_revision() == head_revision()
    assert [tuple(r) for r in rows] == [(1, "sms")]


def test_api_sets_and_changes_the_channel(actions):
    key = actions.api_key()
    assert actions.campaign(key)["channel"] == "sms"
    email = actions.campaign(key, name="Newsletter", channel="email", cost="25.00", sent=None)
    assert (email["channel"], email["total_cost"]) == ("email", "25.00")
    assert actions.api("GET", f"/campaigns/{email['id']}", key).json["channel"] == "email"

    changed = actions.api("PATCH", f"/campaigns/{email['id']}", key, json={"channel": "social", "cost": "30"})
    assert changed.status_code == 200, changed.json
    assert (changed.json["channel"], changed.json["cost"], changed.json["name"]) == ("social", "30.00", "Newsletter")

    wrong = actions.api("POST", "/campaigns", key, json={"name": "x", "currency": "USD", "channel": "fax"})
    assert wrong.status_code == 400
    assert wrong.json["errors"]["channel"] == ["Must be one of: sms, email, social, qr, print, other."]
    empty = actions.api("PATCH", f"/campaigns/{email['id']}", key, json={})
    assert empty.status_code == 400 and "Give at least one of" in empty.json["errors"]["_schema"][0]
    other = actions.api_key("someone@example.com")
    assert actions.api("PATCH", f"/campaigns/{email['id']}", other, json={"name": "mine"}).status_code == 404


@pytest.mark.parametrize("field,value", [
    ("message_template", "Hi {link}"), ("cost_per_message", "0.01"), ("cost_per_segment", "0.01"),
])
def test_sms_fields_are_refused_on_other_channels(actions, field, value):
    key = actions.api_key()
    body = {"name": "Flyer", "currency": "USD", "channel": "print", "cost": None, field: value}
    response = actions.api("POST", "/campaigns", key, json=body)
    assert response.status_code == 400
    assert response.json["errors"][field][0].startswith("Only SMS campaigns have this; this campaign's channel is print")


def test_an_sms_campaign_keeps_its_message_until_it_is_removed(actions):
    key = actions.api_key()
    campaign = actions.campaign(key, message_template="Sale! {link}")
    path = f"/campaigns/{campaign['id']}"
    refused = actions.api("PATCH", path, key, json={"channel": "email"})
    assert refused.status_code == 400
    assert refused.json["errors"]["message_template"][0].endswith("Set it to null first.")
    moved = actions.api("PATCH", path, key, json={"channel": "email", "message_template": None})
    assert moved.status_code == 200 and moved.json["channel"] == "email"


def test_an_sms_campaign_with_recipients_stays_sms(actions):
    key = actions.api_key()
    campaign = actions.campaign(key, message_template="Sale! {link}")
    actions.client.post(
        f"/smstrack/api/v1/campaigns/{campaign['id']}/recipients", content_type="text/csv",
        data="phone\n+14155550100\n", headers={"Authorization": f"Bearer {key}"},
    )
    response = actions.api("PATCH", f"/campaigns/{campaign['id']}", key, json={"channel": "qr", "message_template": None})
    assert response.status_code == 409
    assert "it stays an SMS campaign" in response.json["errors"]["channel"][0]


def test_sms_endpoints_refuse_other_channels(actions):
    key = actions.api_key()
    campaign = actions.campaign(key, channel="email")
    cid = campaign["id"]
    message = f"Campaign {cid} is a email campaign: recipients, messages, variants and sending are for SMS campaigns only."
    calls = [
        ("POST", f"/campaigns/{cid}/messages/prepare", None),
        ("POST", f"/campaigns/{cid}/messages/export", None),
        ("GET", f"/campaigns/{cid}/messages", None),
        ("GET", f"/campaigns/{cid}/recipients", None),
        ("POST", f"/campaigns/{cid}/variants", {"name": "A", "message_template": "A {link}"}),
    ]
    for method, path, body in calls:
        response = actions.api(method, path, key, json=body)
        assert (response.status_code, response.json) == (409, {"errors": {"channel": [message]}}), path
    imported = actions.client.post(
        f"/smstrack/api/v1/campaigns/{cid}/recipients", content_type="text/csv", data="phone\n+14155550100\n",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert imported.status_code == 409
    # Someone else's campaign is still a 404, whatever its channel.
    other = actions.api_key("someone@example.com")
    assert actions.api("GET", f"/campaigns/{cid}/messages", other).status_code == 404
    # The report and links work as for any campaign.
    assert actions.api("GET", f"/campaigns/{cid}/report", key).status_code == 200


def test_cli_creates_campaigns_in_a_channel_and_refuses_sms_commands(app, runner, tmp_path):
    created = _run(runner, "create-campaign", "--name", "Poster", "--currency", "EUR", "--channel", "print",
                   "--cost", "120", "--quiet")
    assert created.exit_code == 0, created.output
    cid = created.output.strip()
    wrong = _run(runner, "create-campaign", "--name", "x", "--currency", "EUR", "--channel", "fax")
    assert wrong.exit_code == 2 and "'fax' is not one of" in wrong.output
    sms_only = _run(runner, "create-campaign", "--name", "x", "--currency", "EUR", "--channel", "email",
                    "--cost-per-message", "0.01")
    assert sms_only.exit_code == 1 and "cost_per_message: Only SMS campaigns have this" in sms_only.output
    sms = _run(runner, "create-campaign", "--name", "Text", "--currency", "EUR", "--quiet")
    with app.app_context():
        from flask_smstrack.manage import get_campaign

        assert (get_campaign(int(cid)).channel, get_campaign(int(sms.output.strip())).channel) == ("print", "sms")

    recipients = tmp_path / "r.csv"
    recipients.write_text("phone\n+14155550100\n")
    message = f"Campaign {cid} is a print campaign"
    for args in (("import-recipients", cid, str(recipients)), ("add-variant", cid, "A", "A {link}"),
                 ("export-messages", cid), ("export-recipients", cid), ("send", cid, "--yes")):
        result = _run(runner, *args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)


# -- UTM medium of new links ------------------------------------------------


@pytest.mark.parametrize("channel", ["email", "social", "qr", "print"])
def test_new_links_get_the_channel_as_utm_medium(actions, channel):
    key = actions.api_key()
    campaign = actions.campaign(key, channel=channel)
    link = actions.link(key, campaign["id"], utm={"utm_source": "newsletter"})
    assert link["utm"] == {"utm_source": "newsletter", "utm_medium": channel}
    location = actions.click(link["code"]).headers["Location"]
    assert location.startswith(f"https://shop.example.com/spring?src=sms&utm_source=newsletter&utm_medium={channel}&")


def test_explicit_utm_medium_wins(actions):
    key = actions.api_key()
    email = actions.campaign(key, channel="email")
    assert actions.link(key, email["id"], utm={"utm_medium": "newsletter"})["utm"] == {"utm_medium": "newsletter"}
    # The destination's own parameter wins at the redirect.
    link = actions.link(key, email["id"], destination_url="https://shop.example.com/?utm_medium=mail")
    assert link["utm"] == {"utm_medium": "email"}
    assert actions.click(link["code"]).headers["Location"].startswith("https://shop.example.com/?utm_medium=mail&smsclid=")
    # Other campaigns get no medium; SMS links keep what they had before channels.
    for channel in ("other", "sms"):
        campaign = actions.campaign(key, channel=channel)
        assert actions.link(key, campaign["id"])["utm"] is None
        tagged = actions.link(key, campaign["id"], utm={"utm_source": "spring"})
        assert tagged["utm"] == {"utm_source": "spring"}


def test_dashboard_link_form_gets_the_default_too(app, actions):
    key = actions.api_key()
    campaign = actions.campaign(key, channel="social")
    client = login(app)
    url = f"/smstrack/campaigns/{campaign['id']}/links/new"
    response = client.post(url, data={"csrf_token": csrf_token(client, url), "destination_url": "https://shop.example.com/",
                                      "utm_campaign": "spring"})
    assert response.status_code == 302
    links = actions.api("GET", f"/campaigns/{campaign['id']}/links", key).json["links"]
    assert links[0]["utm"] == {"utm_campaign": "spring", "utm_medium": "social"}


# -- the dashboard's campaign form and page -----------------------------------


def test_dashboard_campaign_form_sets_the_channel(app, actions):
    actions.api_key()
    client = login(app)
    url = "/smstrack/campaigns/new"
    page = client.get(url).text
    assert '<select id="f-channel" name="channel"' in page and '<option value="qr">QR code</option>' in page
    response = client.post(url, data={"csrf_token": csrf_token(client, url), "name": "Flyer", "channel": "print",
                                      "currency": "USD", "cost": "80", "sent": "", "sent_at": ""})
    assert response.status_code == 302, response.text
    cid = int(re.search(r"/campaigns/(\d+)/links/new", response.headers["Location"]).group(1))
    edit = client.get(f"/smstrack/campaigns/{cid}/edit").text
    # A print campaign's form has no message, nor prices per message or segment.
    assert 'id="f-message_template"' not in edit and 'id="f-cost_per_segment"' not in edit
    assert '<option value="print" selected>' in edit
    data = {"csrf_token": csrf_token(client, f"/smstrack/campaigns/{cid}/edit"), "name": "Flyer", "channel": "qr",
            "currency": "USD", "cost": "80", "sent": "", "sent_at": "", "message_template": "Hi {link}"}
    refused = client.post(f"/smstrack/campaigns/{cid}/edit", data=data)
    assert refused.status_code == 400
    assert "Only SMS campaigns have this; this campaign's channel is qr." in html.unescape(refused.text)
    data["message_template"] = ""
    assert client.post(f"/smstrack/campaigns/{cid}/edit", data=data).status_code == 302
    key = actions.api_key()
    assert actions.api("GET", f"/campaigns/{cid}", key).json["channel"] == "qr"


def test_campaign_page_hides_sms_parts_of_other_channels(app, actions):
    key = actions.api_key()
    email = actions.campaign(key, channel="email")
    link = actions.link(key, email["id"])
    sms = actions.campaign(key, name="Text", message_template="Hi {link} Reply STOP to opt out")
    actions.client.post(
        f"/smstrack/api/v1/campaigns/{sms['id']}/recipients", content_type="text/csv",
        data="phone\n+14155550100\n", headers={"Authorization": f"Bearer {key}"},
    )
    client = login(app)
    page = client.get(f"/smstrack/campaigns/{email['id']}").text
    assert 'data-channel="email">Email</span>' in page
    assert "Send…" not in page and 'id="messages"' not in page
    assert f'href="/smstrack/campaigns/{email["id"]}/links/{link["id"]}/qr"' in page
    sms_page = client.get(f"/smstrack/campaigns/{sms['id']}").text
    assert "Send…" in sms_page and 'id="messages"' in sms_page
    for path in ("send", "messages.csv", "recipients.csv"):
        response = client.get(f"/smstrack/campaigns/{email['id']}/{path}")
        assert response.status_code == 409, path
        assert "recipients, messages, variants and sending are for SMS campaigns only" in html.unescape(response.text)
    # Logged out: the login page first, as for any page.
    assert app.test_client().get(f"/smstrack/campaigns/{email['id']}/send").status_code == 302
    token = csrf_token(client, f"/smstrack/campaigns/{sms['id']}")
    prepared = client.post(f"/smstrack/campaigns/{email['id']}/messages/prepare", data={"csrf_token": token})
    assert prepared.status_code == 409


# -- QR codes -----------------------------------------------------------------


def _png_size(body: bytes) -> tuple[int, int]:
    assert body[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", body[8:16])
    assert (length, kind) == (13, b"IHDR")
    width, height = struct.unpack(">II", body[16:24])
    # The image data decompresses (a complete, uncorrupted PNG).
    chunks, offset = [], 8
    while offset < len(body):
        length, kind = struct.unpack(">I4s", body[offset:offset + 8])
        if kind == b"IDAT":
            chunks.append(body[offset + 8:offset + 8 + length])
        offset += 12 + length
    assert zlib.decompress(b"".join(chunks))
    return width, height


def _svg_size(body: bytes) -> tuple[int, int, str]:
    root = ET.fromstring(body)
    assert root.tag == f"{SVG}svg"
    path = root.find(f"{SVG}path")
    assert path is not None and len(path.get("d")) > 100
    return int(root.get("width")), int(root.get("height")), root.findtext(f"{SVG}title")


def _modules(url: str) -> int:
    import segno

    return segno.make(url, error="m", micro=False).symbol_size(scale=1, border=0)[0]


def test_api_qr_codes(sms, sms_app):
    key = sms.api_key()
    campaign = sms.campaign(key, channel="qr")
    link = sms.link(key, campaign["id"], code="poster-1")
    url = link["short_url"]
    assert url == "https://sms.example.com/s/poster-1"
    side = _modules(url)

    png = sms.api("GET", f"/links/{link['id']}/qr.png", key)
    assert (png.status_code, png.mimetype) == (200, "image/png")
    assert _png_size(png.data) == ((side + 8) * 8,) * 2  # 8 px per module, 4 modules of border each side
    bigger = sms.api("GET", f"/links/{link['id']}/qr.png?scale=3&border=0", key)
    assert _png_size(bigger.data) == (side * 3,) * 2

    svg = sms.api("GET", f"/links/{link['id']}/qr.svg?scale=2&border=1", key)
    assert (svg.status_code, svg.mimetype) == (200, "image/svg+xml")
    assert _svg_size(svg.data) == ((side + 2) * 2, (side + 2) * 2, url)
    by_format = sms.api("GET", f"/links/{link['id']}/qr?format=png&scale=1", key)
    assert _png_size(by_format.data) == ((side + 8),) * 2
    assert sms.api("GET", f"/links/{link['id']}/qr", key).mimetype == "image/svg+xml"

    for query, field in (("scale=0", "scale"), ("scale=41", "scale"), ("scale=big", "scale"), ("border=17", "border"),
                         ("format=gif", "format")):
        response = sms.api("GET", f"/links/{link['id']}/qr?{query}", key)
        assert response.status_code == 400 and field in response.json["errors"], query
    clash = sms.api("GET", f"/links/{link['id']}/qr.svg?format=png", key)
    assert clash.status_code == 400 and "format" in clash.json["errors"]
    other = sms.api_key("someone@example.com")
    assert sms.api("GET", f"/links/{link['id']}/qr.svg", other).status_code == 404
    assert sms.api("GET", "/links/999999/qr.svg", key).status_code == 404


def test_dashboard_qr_page_and_downloads(app, actions):
    key = actions.api_key()
    campaign = actions.campaign(key, channel="print")
    link = actions.link(key, campaign["id"], code="flyer-7")
    client = login(app)
    base = f"/smstrack/campaigns/{campaign['id']}/links/{link['id']}"
    page = client.get(f"{base}/qr").text
    assert "http://localhost/s/flyer-7" in page
    assert f'href="{base}/qr.png?download=1&amp;scale=8&amp;border=4"' in page
    png = client.get(f"{base}/qr.png?download=1&scale=4&border=2")
    assert png.headers["Content-Disposition"] == 'attachment; filename="flyer-7-qr.png"'
    side = _modules("http://localhost/s/flyer-7")
    assert _png_size(png.data) == ((side + 4) * 4,) * 2
    svg = client.get(f"{base}/qr.svg")
    assert _svg_size(svg.data)[2] == "http://localhost/s/flyer-7"
    assert client.get(f"{base}/qr.png?scale=100").status_code == 400
    assert client.get(f"{base}/qr.gif").status_code == 404
    # Someone else's link: no page, no image; logged out: the login page.
    actions.api_key("someone@example.com")
    stranger = login(app, "someone@example.com")
    assert stranger.get(f"{base}/qr.svg").status_code == 404
    assert app.test_client().get(f"{base}/qr.svg").status_code == 302


# -- the channel comparison -------------------------------------------------


@pytest.fixture
def channel_mix(app, actions):
    """SMS in October (USD, cost 10.00): two people click, one buys for
    15.00. Email in November (USD, cost 5.00): one click, orders of 30.00
    USD and 20.00 EUR. QR code on 30 November at noon UTC (EUR, no cost):
    one click, an order of 12.00 EUR."""
    key = actions.api_key()

    def campaign(channel, currency, cost, sent_at, clicks, orders):
        c = actions.campaign(key, name=channel, channel=channel, currency=currency, cost=cost, sent_at=sent_at,
                             sent=None)
        link = actions.link(key, c["id"])
        responses = [actions.click(link["code"], ua=ua, client=app.test_client(), ip=f"81.2.69.{i + 10}")
                     for i, ua in enumerate((ANDROID, DESKTOP)[:clicks])]
        for i, (revenue, cur) in enumerate(orders):
            body = {"click_id": click_id_of(responses[0]), "event": "purchase", "revenue": revenue, "currency": cur,
                    "order_id": f"{channel}-{i}"}
            assert actions.api("POST", "/conversions", key, json=body).status_code == 201
        return c

    campaign("sms", "USD", "10.00", "2026-10-15T12:00:00+00:00", 2, [("15.00", "USD")])
    campaign("email", "USD", "5.00", "2026-11-10T12:00:00+00:00", 1, [("30.00", "USD"), ("20.00", "EUR")])
    campaign("qr", "EUR", None, "2026-11-30T12:00:00+00:00", 1, [("12.00", "EUR")])
    return key


EXPECTED = [
    {"channel": "sms", "month": "2026-10", "currency": "USD", "campaigns": 1, "clicks": 2, "unique_clicks": 2,
     "conversions": 1, "revenue": "15.00", "cost": "10.00", "profit": "5.00", "roi": 0.5},
    {"channel": "email", "month": "2026-11", "currency": "EUR", "campaigns": 0, "clicks": 0, "unique_clicks": 0,
     "conversions": 0, "revenue": "20.00", "cost": None, "profit": None, "roi": None},
    {"channel": "email", "month": "2026-11", "currency": "USD", "campaigns": 1, "clicks": 1, "unique_clicks": 1,
     "conversions": 2, "revenue": "30.00", "cost": "5.00", "profit": "25.00", "roi": 5.0},
    {"channel": "qr", "month": "2026-11", "currency": "EUR", "campaigns": 1, "clicks": 1, "unique_clicks": 1,
     "conversions": 1, "revenue": "12.00", "cost": None, "profit": None, "roi": None},
]


def _cells(value) -> str:
    return "" if value is None else str(value)


def test_channel_comparison_is_the_same_in_api_csv_and_dashboard(app, actions, channel_mix):
    response = actions.api("GET", "/reports/channels", channel_mix)
    assert response.status_code == 200
    assert response.json["rows"] == EXPECTED
    keys = [c["key"] for c in response.json["columns"]]

    api_csv = actions.api("GET", "/reports/channels?format=csv", channel_mix)
    assert api_csv.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(api_csv.text)))
    assert rows[0] == keys
    assert rows[1:] == [[_cells(r[k]) for k in keys] for r in EXPECTED]

    client = login(app)
    assert client.get("/smstrack/channels.csv").text == api_csv.text
    page = html.unescape(client.get("/smstrack/channels").text)
    shown = re.findall(
        r'<tr data-channel="(\w+)" data-month="([\d-]+)" data-currency="(\w+)">(.*?)</tr>', page, re.DOTALL
    )
    assert [(c, m, cur) for c, m, cur, _ in shown] == [(r["channel"], r["month"], r["currency"]) for r in EXPECTED]
    for (_, _, _, cells), expected in zip(shown, EXPECTED):
        values = dict(re.findall(r'<td data-key="(\w+)">([^<]*)</td>', cells))
        assert values == {
            "campaigns": str(expected["campaigns"]), "clicks": str(expected["clicks"]),
            "unique_clicks": str(expected["unique_clicks"]), "conversions": str(expected["conversions"]),
            "revenue": expected["revenue"], "cost": expected["cost"] or "–", "profit": expected["profit"] or "–",
            "roi": f"{expected['roi'] * 100:.1f}%" if expected["roi"] is not None else "–",
        }
    # The chart: unique clicks per channel, revenue and profit per currency.
    assert re.findall(r'<h3>([^<]+)</h3>\s*<ul class="st-hbars st-hbars-channels', page) == [
        "Unique clicks", "Revenue (EUR)", "Revenue (USD)", "Profit (USD)"]


def test_channel_comparison_months_follow_the_timezone_and_owner(actions, channel_mix):
    # 30 November at noon UTC is already 1 December in Kiritimati (UTC+14).
    rows = actions.api("GET", "/reports/channels?tz=Pacific/Kiritimati", channel_mix).json["rows"]
    assert [(r["channel"], r["month"]) for r in rows] == [
        ("sms", "2026-10"), ("email", "2026-11"), ("email", "2026-11"), ("qr", "2026-12")]
    bad = actions.api("GET", "/reports/channels?tz=Mars/Base", channel_mix)
    assert bad.status_code == 400 and "tz" in bad.json["errors"]
    assert actions.api("GET", "/reports/channels?format=xml", channel_mix).status_code == 400
    stranger = actions.api_key("someone@example.com")
    assert actions.api("GET", "/reports/channels", stranger).json["rows"] == []


def test_channel_comparison_reads_without_writing(app, actions, channel_mix):
    """A GET builds no rollups; after a catch-up the numbers are the same."""
    from wsgi import db

    from flask_smstrack.models import Campaign, RollupState
    from flask_smstrack.reports.rollups import refresh_many

    with app.app_context():
        before = db.session.query(RollupState).count()
    assert actions.api("GET", "/reports/channels", channel_mix).json["rows"] == EXPECTED
    with app.app_context():
        assert db.session.query(RollupState).count() == before
        refresh_many(Campaign.id.is_not(None))
        assert db.session.query(RollupState).count() > before
    assert actions.api("GET", "/reports/channels", channel_mix).json["rows"] == EXPECTED
