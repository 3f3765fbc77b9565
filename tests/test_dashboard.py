"""The dashboard as its users see it: log in through the form, read the
campaign list and a campaign's page, download CSV, create and edit
campaigns and links. Numbers are asserted as the literal strings on the page."""
from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re

import pytest

from conftest import ANDROID, DESKTOP, IMESSAGE_PREVIEW, IPHONE, click_id_of
from test_reports import BREAKDOWN_NAMES, TABLE_NAMES

_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
_TILE = re.compile(r'<div class="st-tile-label">([^<]+)</div>\s*<div class="st-tile-value">(.*?)</div>')
PASSWORD = "correct horse"


def csrf_token(client, page: str) -> str:
    """The token a real form carries, read from the rendered page."""
    response = client.get(page)
    assert response.status_code == 200, response.text
    return _CSRF.search(response.text).group(1)


def login(app, email="owner@example.com", password=PASSWORD):
    """A client logged in through the login form."""
    client = app.test_client()
    token = csrf_token(client, "/smstrack/login")
    response = client.post("/smstrack/login", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.text
    assert response.headers["Location"] == "/smstrack/"
    return client


_STEP = re.compile(
    r'<span class="st-step-label">([^<]+)</span>\s*<span class="st-step-value">([^<]+)</span>'
    r'(?:\s*<span class="st-step-rate"><strong>([^<]+)</strong> ([a-zA-Z ]+)</span>)?'
)


def tiles(page: str) -> dict[str, str]:
    """The KPI tiles and the funnel's steps as shown: label -> value with
    its unit; a step's rate under the rate's name (CTR, Conversion rate)."""
    shown = {html.unescape(label): html.unescape(re.sub(r"<[^>]+>", "", value)) for label, value in _TILE.findall(page)}
    for label, value, rate, rate_name in _STEP.findall(page):
        shown[html.unescape(label)] = html.unescape(value)
        if rate:
            shown[rate_name if rate_name == "CTR" else rate_name.capitalize()] = html.unescape(rate)
    return shown


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def list_names(page: str) -> list[str]:
    """Campaign names in the order of the list's rows."""
    return [html.unescape(n) for n in re.findall(r'<th scope="row"><a href="/smstrack/campaigns/\d+">([^<]+)</a>', page)]


@pytest.fixture
def spring(app, actions):
    """Spring sale: 100 sent for 10.00 USD. The iPhone person clicks twice
    (their landing page reports in), Android and desktop once each (the
    desktop from a referrer that looks like a formula); one link preview and
    one bot. Two purchases from the snippet, 30.00 and 20.00 USD."""
    key = actions.api_key()
    sent_at = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)).isoformat()
    campaign = actions.campaign(key, sent_at=sent_at)
    actions.link(key, campaign["id"], code="spring")
    iphone = actions.click("spring")
    actions.click("spring")
    android = actions.click("spring", ua=ANDROID, client=app.test_client())
    response = app.test_client().get(
        "/s/spring", headers={"User-Agent": DESKTOP, "Referer": "http://=1+2/"}, environ_base={"REMOTE_ADDR": "81.2.69.160"}
    )
    assert response.status_code == 302
    actions.click("spring", ua=IMESSAGE_PREVIEW, client=app.test_client())
    actions.click("spring", ua="curl/8.5.0", client=app.test_client())
    assert actions.collect({"type": "landing", "click_id": click_id_of(iphone)}).status_code == 202
    for response, revenue, order in ((iphone, "30.00", "o-1"), (android, "20.00", "o-2")):
        body = {"type": "conversion", "click_id": click_id_of(response), "event": "purchase",
                "revenue": revenue, "currency": "USD", "order_id": order}
        assert actions.collect(body).status_code == 202
    return {"key": key, "id": campaign["id"]}


# -- access -----------------------------------------------------------------


def _campaign_urls(campaign_id: int) -> list[str]:
    base = f"/smstrack/campaigns/{campaign_id}"
    return [
        base, f"{base}/edit", f"{base}/links/new", f"{base}/install",
        *(f"{base}/tables/{name}.csv" for name in TABLE_NAMES),
    ]


def test_every_page_needs_login(client, spring):
    for url in ["/smstrack/", "/smstrack/campaigns.csv", "/smstrack/campaigns/new", *_campaign_urls(spring["id"])]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/smstrack/login?next="), url


def test_wrong_password_is_refused(app, client, actions):
    actions.user()
    token = csrf_token(client, "/smstrack/login")
    response = client.post("/smstrack/login", data={"email": "owner@example.com", "password": "nope", "csrf_token": token})
    assert response.status_code == 400
    assert "Wrong email or password." in response.text
    assert client.get("/smstrack/").status_code == 302


def test_another_users_campaign_is_404_everywhere(app, actions, spring):
    actions.user("other@example.com")
    other = login(app, "other@example.com")
    for url in _campaign_urls(spring["id"]):
        assert other.get(url).status_code == 404, url
    token = csrf_token(other, "/smstrack/campaigns/new")
    edit = other.post(f"/smstrack/campaigns/{spring['id']}/edit", data={"csrf_token": token, "name": "Mine now", "currency": "USD"})
    assert edit.status_code == 404
    link = other.post(
        f"/smstrack/campaigns/{spring['id']}/links/new",
        data={"csrf_token": token, "destination_url": "https://evil.example/", "code": "evil"},
    )
    assert link.status_code == 404
    page = other.get("/smstrack/")
    assert "Spring sale" not in page.text and "No campaigns yet" in page.text
    assert rows_of(other.get("/smstrack/campaigns.csv").text)[1:] == []
    # Nothing changed for the owner.
    assert actions.report(spring["key"], spring["id"])["clicks"] == 4
    assert actions.api("GET", f"/campaigns/{spring['id']}/links", spring["key"]).json["links"][0]["code"] == "spring"


def test_admin_sees_every_campaign(app, actions, spring):
    actions.user("boss@example.com", admin=True)
    boss = login(app, "boss@example.com")
    assert "Spring sale" in boss.get("/smstrack/").text
    assert boss.get(f"/smstrack/campaigns/{spring['id']}").status_code == 200


def test_unknown_campaign_and_table_are_404(app, spring):
    client = login(app)
    assert client.get("/smstrack/campaigns/9999").status_code == 404
    response = client.get(f"/smstrack/campaigns/{spring['id']}/tables/passwords.csv")
    assert response.status_code == 404
    assert "There is no table" in html.unescape(response.text)


def test_logout(app, spring):
    client = login(app)
    token = csrf_token(client, "/smstrack/")
    response = client.post("/smstrack/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert client.get("/smstrack/").status_code == 302


# -- the campaign page --------------------------------------------------------


def test_campaign_page_shows_the_hand_worked_numbers(app, spring):
    client = login(app)
    response = client.get(f"/smstrack/campaigns/{spring['id']}")
    assert response.status_code == 200
    assert tiles(response.text) == {
        "Revenue": "50.00 USD",           # 30.00 + 20.00
        "Cost": "10.00 USD",
        "Profit": "40.00 USD",            # 50 - 10
        "ROI": "400.0%",                  # 40 / 10
        "Sent": "100",
        "Clicks": "4",                    # iPhone twice, Android, desktop
        "Unique clicks": "3",
        "CTR": "3.0%",                    # 3 / 100
        "Conversions": "2",
        "Conversion rate": "66.7%",       # 2 / 3
        "ROAS": "5.00×",                  # 50 / 10
        "EPC": "16.67 USD",               # 50 / 3
        "AOV": "25.00 USD",               # 50 / 2
        "Cost per conversion": "5.00 USD",  # 10 / 2
        "Verified revenue": "0.00 USD",   # both came from the snippet
    }
    text = re.sub(r"\s+", " ", html.unescape(response.text))
    assert "1 link preview</strong>" in text
    assert "link previews from messaging apps, not people" in text
    assert "1 bot</strong>" in text
    assert "4 clicks by people</strong>, 1 confirmed by the landing page" in text
    # The short link with its copy button.
    assert re.search(r'<code id="short-\d+" class="st-copy-text">http://localhost/s/spring</code><button[^>]+data-copy="short-\d+"', text)


def test_campaign_page_has_every_table(app, spring):
    client = login(app)
    page = html.unescape(client.get(f"/smstrack/campaigns/{spring['id']}").text)
    for name in BREAKDOWN_NAMES:
        if name == "variants":
            # No click of this campaign has a variant: the table is left out.
            assert 'id="table-variants"' not in page
        else:
            assert f'id="table-{name}"' in page, name
            assert f"/smstrack/campaigns/{spring['id']}/tables/{name}.csv" in page
    for name in ("heatmap_clicks", "heatmap_conversions", "send_to_click", "click_to_conversion"):
        assert f'id="table-{name}"' in page, name
    # Breakdown rows carry a bar as wide as their share of clicks.
    assert re.search(r'/spring → https://shop\.example\.com/spring\?src=sms</span>\s*<span class="st-bartrack" aria-hidden="true"><span class="st-bar st-w-100">', page)
    assert 'class="st-bar st-w-50"' in page  # the iPhone: 2 of 4 clicks in the OS table
    # The time series is drawn as inline SVG, with its numbers in the tooltips.
    assert page.count('<svg class="st-svg"') == 3
    assert re.search(r'data-tip="[^"]+: 4 clicks \(3 unique\), 2 conversions, 50\.00 USD"', page) or (
        # the clicks straddled an hour boundary
        re.search(r'data-tip="[^"]+: \d clicks', page)
    )
    assert "No clicks yet." not in page


def test_heatmap_follows_the_timezone(app, actions, spring):
    client = login(app)
    table = actions.api("GET", f"/campaigns/{spring['id']}/tables/heatmap_clicks?tz=Asia/Kolkata", spring["key"]).json
    page = html.unescape(client.get(f"/smstrack/campaigns/{spring['id']}?tz=Asia/Kolkata").text)
    assert 'value="Asia/Kolkata"' in page
    seen = 0
    for row in table["rows"]:
        for hour in range(24):
            n = row[f"h{hour:02d}"]
            if n:
                seen += n
                noun = "click" if n == 1 else "clicks"
                assert f'title="{row["weekday"]} {hour:02d}:00–{hour:02d}:59: {n} {noun}"' in page
    assert seen == 4
    assert "tables/heatmap_clicks.csv?tz=Asia/Kolkata" in page


def test_bad_timezone_says_so_and_uses_the_default(app, spring):
    client = login(app)
    response = client.get(f"/smstrack/campaigns/{spring['id']}?tz=Mars/Olympus")
    assert response.status_code == 400
    text = html.unescape(response.text)
    assert "Unknown timezone “Mars/Olympus”" in text and "Showing UTC instead." in text
    assert tiles(response.text)["CTR"] == "3.0%"
    csv_response = client.get(f"/smstrack/campaigns/{spring['id']}/tables/heatmap_clicks.csv?tz=Mars/Olympus")
    assert csv_response.status_code == 400
    assert "Unknown timezone" in csv_response.text


@pytest.mark.parametrize("name", TABLE_NAMES)
def test_table_csv_is_the_api_table(app, actions, spring, name):
    client = login(app)
    response = client.get(f"/smstrack/campaigns/{spring['id']}/tables/{name}.csv?tz=Europe/Paris")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == f'attachment; filename="campaign-{spring["id"]}-{name}.csv"'
    api_csv = actions.api("GET", f"/campaigns/{spring['id']}/tables/{name}?tz=Europe/Paris&format=csv", spring["key"])
    assert response.text == api_csv.text
    api_json = actions.api("GET", f"/campaigns/{spring['id']}/tables/{name}?tz=Europe/Paris", spring["key"]).json
    header, *rows = rows_of(response.text)
    assert header == [c["key"] for c in api_json["columns"]]
    keys = [c["key"] for c in api_json["columns"]]
    expected = [["" if row[k] is None else str(row[k]) for k in keys] for row in api_json["rows"]]
    # CSV neutralises formula-looking text; otherwise cell for cell the same.
    assert [[c[1:] if c.startswith("'=") else c for c in row] for row in rows] == expected


def test_summary_csv_numbers(app, spring):
    client = login(app)
    header, row = rows_of(client.get(f"/smstrack/campaigns/{spring['id']}/tables/summary.csv").text)
    summary = dict(zip(header, row))
    assert {k: summary[k] for k in ("clicks", "unique_clicks", "previews", "bots", "ctr", "conversions", "revenue", "profit", "roi")} == {
        "clicks": "4", "unique_clicks": "3", "previews": "1", "bots": "1", "ctr": "0.03",
        "conversions": "2", "revenue": "50.00", "profit": "40.00", "roi": "4.0",
    }


def test_formula_cells_are_neutralised_in_csv(app, actions, spring):
    client = login(app)
    referrers = rows_of(client.get(f"/smstrack/campaigns/{spring['id']}/tables/referrers.csv").text)
    assert ["'=1+2", "1", "1", "0", "0.0", "0.00", "0.25"] in referrers
    actions.campaign(spring["key"], name="=HYPERLINK(\"http://evil.example\")")
    listing = rows_of(client.get("/smstrack/campaigns.csv").text)
    assert "'=HYPERLINK(\"http://evil.example\")" in [row[1] for row in listing]
    # On the page it is plain, escaped text.
    assert "=HYPERLINK(&#34;http://evil.example&#34;)" in client.get("/smstrack/").text


def test_variants_table_shows_when_clicks_have_variants(app, actions, spring):
    from sqlalchemy import update

    from flask_smstrack.models import Click
    from flask_smstrack.state import get_state

    with app.app_context():
        db = get_state().db
        db.session.execute(update(Click).where(Click.campaign_id == spring["id"]).values(variant_id=7))
        db.session.commit()
    page = login(app).get(f"/smstrack/campaigns/{spring['id']}").text
    assert 'id="table-variants"' in page and "Variant 7" in page


def test_empty_campaign_says_what_to_do(app, actions):
    key = actions.api_key()
    campaign = actions.campaign(key, name="Fresh", cost=None, sent=None)
    client = login(app)
    page = html.unescape(client.get(f"/smstrack/campaigns/{campaign['id']}").text)
    assert "Add the link that goes in your SMS" in page
    assert "No clicks yet." in page
    assert tiles(page)["ROI"] == "–" and tiles(page)["CTR"] == "–"
    actions.link(key, campaign["id"], code="fresh")
    page = html.unescape(client.get(f"/smstrack/campaigns/{campaign['id']}").text)
    assert "Send your SMS with the link above" in page


# -- the campaign list ----------------------------------------------------------


@pytest.fixture
def three(app, actions):
    """Three campaigns sent on different days with different results."""
    key = actions.api_key()
    made = {}
    for name, day, sent, cost, clicks in (
        ("Alpha", "2024-03-01", 100, "5.00", 1),
        ("Bravo", "2024-03-10", 10, "50.00", 2),
        ("Charlie", "2024-03-20", 1000, "1.00", 3),
    ):
        campaign = actions.campaign(key, name=name, sent=sent, cost=cost, sent_at=f"{day}T12:00:00+00:00")
        actions.link(key, campaign["id"], code=f"c-{name.lower()}")
        for i in range(clicks):
            actions.click(f"c-{name.lower()}", ua=IPHONE, ip=f"81.2.69.{i}", client=app.test_client())
        made[name] = campaign["id"]
    return made


def test_list_rows(app, three):
    client = login(app)
    response = client.get("/smstrack/")
    assert response.status_code == 200
    assert list_names(response.text) == ["Charlie", "Bravo", "Alpha"]  # newest send first
    text = html.unescape(response.text)
    # Bravo: 2 of 10 clicked (20.0%); no revenue, so profit -50.00 and ROI -100.0%.
    row = re.search(r'>Bravo</a>(.*?)</tr>', text, re.S).group(1)
    assert '<span class="st-rowdate">10 Mar 2024' in row
    cells = [re.sub(r"<[^>]+>", " ", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    # Revenue, cost, profit, ROI; reached, clicks, CTR with the unique
    # clicks it counts, conversions, conversion rate; opt-out rate (nothing
    # known delivered).
    cells = [" ".join(c.split()) for c in cells]
    assert cells == ["0.00 USD", "50.00 USD", "-50.00 USD", "-100.0%", "10", "2", "20.0% 2 unique clicks", "0", "0.0%", "–"]


@pytest.mark.parametrize(
    "query,names",
    [
        ("sort=ctr&dir=desc", ["Bravo", "Alpha", "Charlie"]),   # 20%, 1%, 0.3%
        ("sort=ctr&dir=asc", ["Charlie", "Alpha", "Bravo"]),
        ("sort=cost&dir=desc", ["Bravo", "Alpha", "Charlie"]),
        ("sort=clicks&dir=asc", ["Alpha", "Bravo", "Charlie"]),
        ("sort=name", ["Alpha", "Bravo", "Charlie"]),
        ("sort=name&dir=desc", ["Charlie", "Bravo", "Alpha"]),
        ("sort=date&dir=asc", ["Alpha", "Bravo", "Charlie"]),
    ],
)
def test_list_sorts(app, three, query, names):
    client = login(app)
    assert list_names(client.get(f"/smstrack/?{query}").text) == names
    listing = rows_of(client.get(f"/smstrack/campaigns.csv?{query}").text)
    assert [row[1] for row in listing[1:]] == names


def test_sort_links_in_headers(app, three):
    page = html.unescape(login(app).get("/smstrack/?sort=ctr&dir=desc&start=2024-03-01").text)
    # The active column flips its direction; others keep the filter.
    assert 'href="/smstrack/?start=2024-03-01&sort=ctr&dir=asc"' in page
    assert 'href="/smstrack/?start=2024-03-01&sort=revenue&dir=desc"' in page
    assert 'href="/smstrack/?start=2024-03-01&sort=date&dir=desc"' in page
    assert 'href="/smstrack/?start=2024-03-01&sort=name&dir=asc"' in page
    assert 'aria-sort="descending"' in page


def test_list_filters_by_send_date(app, three):
    client = login(app)
    assert list_names(client.get("/smstrack/?start=2024-03-05&end=2024-03-20").text) == ["Charlie", "Bravo"]
    assert list_names(client.get("/smstrack/?end=2024-03-10").text) == ["Bravo", "Alpha"]
    listing = rows_of(client.get("/smstrack/campaigns.csv?start=2024-03-05&end=2024-03-15").text)
    assert [(row[1], row[2]) for row in listing[1:]] == [("Bravo", "2024-03-10")]
    empty = html.unescape(client.get("/smstrack/?start=2025-01-01").text)
    assert "No campaign in these dates" in empty


@pytest.mark.parametrize(
    "query,message",
    [
        ("start=2024-13-01", "The start date “2024-13-01” is not a date: use YYYY-MM-DD"),
        ("end=yesterday", "The end date “yesterday” is not a date"),
        ("start=2024-03-20&end=2024-03-01", "The start date 2024-03-20 is after the end date 2024-03-01"),
        ("sort=nonsense", "Unknown sort “nonsense”: use one of name, date, revenue,"),
        ("sort=ctr&dir=up", "dir must be asc or desc, not “up”."),
        ("page=0", "page must be a whole number from 1, not “0”."),
        ("page=two", "page must be a whole number from 1, not “two”."),
    ],
)
def test_bad_arguments_get_a_message(app, three, query, message):
    client = login(app)
    response = client.get(f"/smstrack/?{query}")
    assert response.status_code == 400
    assert message in html.unescape(response.text)
    assert len(list_names(response.text)) >= 2  # the list is still there
    csv_response = client.get(f"/smstrack/campaigns.csv?{query}")
    assert csv_response.status_code == 400
    assert message in csv_response.text


def test_list_csv_numbers(app, spring, actions):
    client = login(app)
    header, row = rows_of(client.get("/smstrack/campaigns.csv").text)
    values = dict(zip(header, row))
    assert {k: values[k] for k in ("name", "currency", "sent", "clicks", "unique_clicks", "ctr", "conversions",
                                   "conversion_rate", "revenue", "cost", "profit", "roi")} == {
        "name": "Spring sale", "currency": "USD", "sent": "100", "clicks": "4", "unique_clicks": "3", "ctr": "0.03",
        "conversions": "2", "conversion_rate": "0.666667", "revenue": "50.00", "cost": "10.00", "profit": "40.00", "roi": "4.0",
    }


def test_list_shows_other_currencies_apart(app, actions):
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"])
    response = actions.click(link["code"])
    for revenue, currency, order in (("30.00", "USD", "u-1"), ("5.50", "EUR", "e-1")):
        body = {"click_id": click_id_of(response), "revenue": revenue, "currency": currency, "order_id": order}
        assert actions.api("POST", "/conversions", key, json=body).status_code == 201
    client = login(app)
    page = html.unescape(client.get("/smstrack/").text)
    assert "30.00 USD<br><span class=\"st-muted st-small\">+ 5.50 EUR</span>" in page
    values = dict(zip(*rows_of(client.get("/smstrack/campaigns.csv").text)))
    assert (values["revenue"], values["revenue_other_currencies"], values["profit"]) == ("30.00", "5.50 EUR", "20.00")
    campaign_page = html.unescape(client.get(f"/smstrack/campaigns/{campaign['id']}").text)
    assert "also 5.50 EUR (not in profit)" in campaign_page


def test_empty_list_says_what_to_do(app, actions):
    actions.user()
    page = html.unescape(login(app).get("/smstrack/").text)
    assert "No campaigns yet" in page and 'href="/smstrack/campaigns/new"' in page


# -- forms ----------------------------------------------------------------------


def _campaign_form(**fields) -> dict:
    return {"name": "Summer sale", "currency": "usd", "cost": "12.50", "cost_per_message": "", "sent": "1,000",
            "sent_at": "2024-06-01T09:30", **fields}


def test_create_campaign(app, actions):
    key = actions.api_key()
    client = login(app)
    token = csrf_token(client, "/smstrack/campaigns/new")
    response = client.post("/smstrack/campaigns/new", data={"csrf_token": token, **_campaign_form()})
    assert response.status_code == 302
    (created,) = actions.api("GET", "/campaigns", key).json["campaigns"]
    assert response.headers["Location"] == f"/smstrack/campaigns/{created['id']}/links/new"
    assert (created["name"], created["currency"], created["cost"], created["sent"], created["sent_at"]) == (
        "Summer sale", "USD", "12.50", 1000, "2024-06-01T09:30:00+00:00",
    )
    page = html.unescape(client.get(response.headers["Location"]).text)
    assert "Campaign “Summer sale” created." in page


def test_new_campaign_send_time_is_in_the_dashboard_timezone(make_app):
    from conftest import Actions

    app = make_app(SMSTRACK_TIMEZONE="Europe/Paris")
    actions = Actions(app)
    key = actions.api_key()
    client = login(app)
    token = csrf_token(client, "/smstrack/campaigns/new")
    client.post("/smstrack/campaigns/new", data={"csrf_token": token, **_campaign_form()})
    (created,) = actions.api("GET", "/campaigns", key).json["campaigns"]
    assert created["sent_at"] == "2024-06-01T07:30:00+00:00"
    assert 'value="2024-06-01T09:30"' in client.get(f"/smstrack/campaigns/{created['id']}/edit").text


@pytest.mark.parametrize(
    "fields,field,message",
    [
        ({"currency": "ABC"}, "currency", "Not an ISO 4217 currency code (for example USD, EUR, GBP)."),
        ({"name": ""}, "name", "Length must be between 1 and 200."),
        ({"cost": "-5"}, "cost", "Must be 0 or more."),
        ({"cost_per_message": "0.01"}, "cost", "Give one of cost, cost_per_message, cost_per_segment, not cost and cost_per_message."),
        ({"sent": "lots"}, "sent", "Not a valid integer."),
        ({"sent_at": "tomorrow"}, "sent_at", "Not a valid datetime."),
    ],
)
def test_create_campaign_with_bad_input_writes_nothing(app, actions, fields, field, message):
    key = actions.api_key()
    client = login(app)
    token = csrf_token(client, "/smstrack/campaigns/new")
    response = client.post("/smstrack/campaigns/new", data={"csrf_token": token, **_campaign_form(**fields)})
    assert response.status_code == 400
    assert f'<p class="st-error" id="err-{field}">{html.escape(message, quote=True)}</p>' in response.text
    # What was typed is kept.
    for value in fields.values():
        assert f'value="{html.escape(value, quote=True)}"' in response.text
    assert actions.api("GET", "/campaigns", key).json["campaigns"] == []


def test_form_without_csrf_token_writes_nothing(app, actions):
    key = actions.api_key()
    client = login(app)
    response = client.post("/smstrack/campaigns/new", data=_campaign_form())
    assert response.status_code == 400
    assert "The form expired" in response.text
    assert actions.api("GET", "/campaigns", key).json["campaigns"] == []


def test_edit_campaign(app, actions, spring):
    client = login(app)
    url = f"/smstrack/campaigns/{spring['id']}/edit"
    page = client.get(url).text
    assert 'value="Spring sale"' in page and 'value="10.00"' in page and 'value="100"' in page
    token = _CSRF.search(page).group(1)
    data = {"csrf_token": token, "name": "Spring sale (final)", "currency": "USD", "cost": "", "cost_per_message": "0.08",
            "sent": "200", "sent_at": ""}
    response = client.post(url, data=data)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/smstrack/campaigns/{spring['id']}"
    report = actions.report(spring["key"], spring["id"])
    assert (report["cost"], report["sent"], report["ctr"]) == ("16.00", 200, 0.015)
    page = html.unescape(client.get(response.headers["Location"]).text)
    assert "Campaign “Spring sale (final)” saved." in page
    assert tiles(page)["Cost"] == "16.00 USD" and tiles(page)["CTR"] == "1.5%"


def test_edit_campaign_with_bad_input_changes_nothing(app, actions, spring):
    client = login(app)
    url = f"/smstrack/campaigns/{spring['id']}/edit"
    token = csrf_token(client, url)
    response = client.post(url, data={"csrf_token": token, **_campaign_form(currency="EURO", cost="1")})
    assert response.status_code == 400
    assert "Not an ISO 4217 currency code" in response.text
    campaign = actions.api("GET", f"/campaigns/{spring['id']}", spring["key"]).json
    assert (campaign["name"], campaign["currency"], campaign["cost"]) == ("Spring sale", "USD", "10.00")


def test_add_link(app, actions, spring):
    client = login(app)
    url = f"/smstrack/campaigns/{spring['id']}/links/new"
    token = csrf_token(client, url)
    data = {"csrf_token": token, "destination_url": " https://shop.example.com/summer ", "code": "summer-24",
            "append_click_id": "y", "utm_source": "sms", "utm_campaign": "summer"}
    response = client.post(url, data=data)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/smstrack/campaigns/{spring['id']}#links"
    links = actions.api("GET", f"/campaigns/{spring['id']}/links", spring["key"]).json["links"]
    added = next(link for link in links if link["code"] == "summer-24")
    assert (added["destination_url"], added["utm"], added["append_click_id"]) == (
        "https://shop.example.com/summer", {"utm_source": "sms", "utm_campaign": "summer"}, True,
    )
    page = html.unescape(client.get(f"/smstrack/campaigns/{spring['id']}").text)
    assert "Link created: http://localhost/s/summer-24" in page
    assert ">http://localhost/s/summer-24</code>" in page
    # A link without a code gets a random one; unchecking the box is kept.
    token = csrf_token(client, url)
    response = client.post(url, data={"csrf_token": token, "destination_url": "https://shop.example.com/"})
    assert response.status_code == 302
    links = actions.api("GET", f"/campaigns/{spring['id']}/links", spring["key"]).json["links"]
    assert len(links) == 3 and links[-1]["append_click_id"] is False and len(links[-1]["code"]) >= 7


def test_add_link_with_a_taken_code(app, actions, spring):
    client = login(app)
    url = f"/smstrack/campaigns/{spring['id']}/links/new"
    token = csrf_token(client, url)
    response = client.post(url, data={"csrf_token": token, "destination_url": "https://shop.example.com/", "code": "spring"})
    assert response.status_code == 400
    assert 'id="err-code">The code “spring” is already in use' in html.unescape(response.text)
    assert len(actions.api("GET", f"/campaigns/{spring['id']}/links", spring["key"]).json["links"]) == 1


@pytest.mark.parametrize(
    "fields,field,message",
    [
        ({"destination_url": "javascript:alert(1)"}, "destination_url", "Must be an absolute http:// or https:// URL."),
        ({"code": "admin"}, "code", "This code is reserved; choose another."),
        ({"code": "a b"}, "code", "Must be 3 to 64 characters of A-Z, a-z, 0-9, _ and -."),
    ],
)
def test_add_link_with_bad_input(app, actions, spring, fields, field, message):
    client = login(app)
    url = f"/smstrack/campaigns/{spring['id']}/links/new"
    token = csrf_token(client, url)
    data = {"csrf_token": token, "destination_url": "https://shop.example.com/", **fields}
    response = client.post(url, data=data)
    assert response.status_code == 400
    assert f'<p class="st-error" id="err-{field}">{html.escape(message, quote=True)}</p>' in response.text
    assert len(actions.api("GET", f"/campaigns/{spring['id']}/links", spring["key"]).json["links"]) == 1


# -- installing the snippet -----------------------------------------------------


def test_install_page(make_app):
    from conftest import Actions

    app = make_app(SMSTRACK_BASE_URL="https://go.example.com/")
    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key, currency="EUR")
    client = login(app)
    url = f"/smstrack/campaigns/{campaign['id']}/install"
    page = html.unescape(client.get(url).text)
    assert '<script async src="https://go.example.com/smstrack/t.js"></script>' in page
    assert "window.smstrack = window.smstrack || function () { (smstrack.q = smstrack.q || []).push(arguments) };" in page
    assert "smstrack('conversion', { event: 'purchase', revenue: '49.90', currency: 'EUR', order_id: 'A-1001' });" in page
    assert 'data-copy="snippet-tag"' in page
    assert "No link yet." in page and "No landing ping yet." in page and "No conversion yet." in page

    link = actions.link(key, campaign["id"], code="try-me")
    response = actions.click("try-me")
    actions.collect({"type": "landing", "click_id": click_id_of(response)})
    page = html.unescape(client.get(url).text)
    assert "Landing ping received." in page and "confirmed 1 visit from" in page
    assert "No conversion yet." in page
    assert "https://go.example.com/s/try-me" in page
    actions.collect({"type": "conversion", "click_id": click_id_of(response), "revenue": "10", "currency": "EUR", "order_id": "x"})
    assert "Conversion received." in client.get(url).text
    assert link["code"] == "try-me"


def test_install_page_without_base_url(app, spring):
    page = html.unescape(login(app).get(f"/smstrack/campaigns/{spring['id']}/install").text)
    assert '<script async src="http://localhost/smstrack/t.js"></script>' in page
    assert "Landing ping received." in page and "Conversion received." in page


def test_static_files_are_served(client):
    for name, mimetype in (("dashboard.css", "text/css"), ("dashboard.js", "text/javascript")):
        response = client.get(f"/smstrack/static/{name}")
        assert (response.status_code, response.mimetype) == (200, mimetype), name
        response.close()


# -- mounted in a host app with its own Flask-Login and CSRFProtect ---------------


@pytest.fixture
def shop(migrated, tmp_path):
    import hostapp
    from conftest import _empty_tables, _host_config

    _empty_tables(migrated)
    app = hostapp.create_app(migrated, **_host_config(tmp_path))
    with app.app_context():
        hostapp.create_tables()
        hostapp.delete_rows()
        for email, staff in (("alice@shop.example", True), ("carol@shop.example", False)):
            user = hostapp.HostUser(email=email, staff=staff)
            user.set_password(PASSWORD)
            hostapp.db.session.add(user)
        hostapp.db.session.commit()
    yield app
    with app.app_context():
        hostapp.db.engine.dispose()


def _shop_login(app, email):
    client = app.test_client()
    token = _CSRF.search(client.get("/login").text).group(1)
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    return client


def test_host_app_users_use_the_dashboard(shop):
    alice = _shop_login(shop, "alice@shop.example")
    page = alice.get("/smstrack/").text
    assert "No campaigns yet" in page
    assert "Log out" not in page  # the host's own login: no smstrack logout
    # The host's CSRFProtect and the dashboard's forms agree on the token.
    token = csrf_token(alice, "/smstrack/campaigns/new")
    response = alice.post("/smstrack/campaigns/new", data={"csrf_token": token, **_campaign_form()})
    assert response.status_code == 302, response.text
    campaign_url = response.headers["Location"].removesuffix("/links/new")
    assert "Summer sale" in alice.get(campaign_url).text
    # The host's access check lets staff in, and nobody else.
    carol = _shop_login(shop, "carol@shop.example")
    assert carol.get("/smstrack/").status_code == 403
    assert carol.get(campaign_url).status_code == 403
    assert carol.get(f"{campaign_url}/tables/summary.csv").status_code == 403
    anonymous = shop.test_client().get(campaign_url)
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login?next=")
