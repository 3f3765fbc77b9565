"""What a newcomer meets: the number formats, the first-run list, the
dashboard's own "page not found", and the install page's notes on testing
with curl and from a phone."""
from __future__ import annotations

import html
import re
from decimal import Decimal

import pytest

from flask_smstrack.reports.formatting import percent, plural

from test_dashboard import login


@pytest.mark.parametrize("value,shown", [
    (Decimal(1) / Decimal(2000), "< 0.1%"),    # 1 in 2,000: not zero
    (Decimal("0.0004999"), "< 0.1%"),
    (Decimal("0.0005"), "< 0.1%"),           # 0.05% rounds half to even, to 0.0
    (Decimal("0.00051"), "0.1%"),
    (Decimal("-0.0002"), "> -0.1%"),
    (Decimal(0), "0.0%"),                    # a real zero stays zero
    (Decimal("0.1234"), "12.3%"),
    (Decimal("12.345"), "1,234.5%"),
    (None, "–"),
])
def test_percent_never_shows_a_small_rate_as_zero(value, shown):
    assert percent(value) == shown


def test_percent_threshold_follows_the_places():
    assert percent(Decimal("0.00001"), places=2) == "< 0.01%"
    assert percent(Decimal("0.0001"), places=2) == "0.01%"


@pytest.mark.parametrize("n,word,words,shown", [
    (1, "click", None, "1 click"),
    (0, "click", None, "0 clicks"),
    (2, "unique click", None, "2 unique clicks"),
    (1234, "conversion", None, "1,234 conversions"),
    (1, "person", "people", "1 person"),
    (3, "person", "people", "3 people"),
    (None, "click", None, "–"),
])
def test_plural(n, word, words, shown):
    assert plural(n, word, words) == shown


def _text(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def test_first_run_list_says_what_to_do_first(app, actions):
    """An admin of an empty install (no campaign anywhere) is told how to
    create one or load the demo, not that no campaign matches its dates."""
    actions.user("owner@example.com", admin=True)
    client = login(app)
    text = _text(client.get("/smstrack/"))
    assert "No campaigns yet" in text and "Create your first campaign" in text
    assert ".venv/bin/flask --app wsgi smstrack demo" in text and "make run DEMO=1" in text
    assert "No campaign in these dates" not in text


def test_campaign_page_plurals_and_small_rates(app, actions):
    """One click is "1 click"; one unique click in 2,000 is "< 0.1%", not 0.0%."""
    key = actions.api_key("owner@example.com")
    campaign = actions.campaign(key, name="Tiny", currency="USD", sent=2000, cost="10")
    link = actions.link(key, campaign["id"], destination_url="https://shop.example.com/a")
    actions.click(link["code"])
    page = login(app).get(f"/smstrack/campaigns/{campaign['id']}")
    text = _text(page)
    assert "1 click by people" in text and "1 clicks" not in text
    assert "< 0.1% CTR" in text
    assert "0 link previews" in text and "0 bots" in text


def test_unknown_dashboard_address_gets_the_dashboards_page(app, actions):
    actions.user("owner@example.com")
    client = login(app)
    response = client.get("/smstrack/no/such/page")
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "Page not found" in response.text and 'class="st-top"' in response.text  # the layout, its header
    assert "/smstrack/no/such/page" in _text(response)
    # Logged out too (no header links then), and for any method.
    anonymous = app.test_client()
    assert anonymous.get("/smstrack/nope").status_code == 404
    assert "Page not found" in anonymous.post("/smstrack/nope").text
    # A known address with another method is still a 405.
    assert anonymous.put("/smstrack/login").status_code == 405


def test_api_and_short_links_keep_their_own_404(app, actions):
    key = actions.api_key("owner@example.com")
    response = app.test_client().get("/smstrack/api/v1/nope", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 404 and response.mimetype == "application/json"
    short = app.test_client().get("/s/no-such-link")
    assert short.status_code == 404 and "This link does not exist" in short.text
    assert 'class="st-top"' not in short.text  # a visitor from an SMS gets no dashboard header


def test_install_page_explains_curl_and_phones(app, actions):
    key = actions.api_key("owner@example.com")
    campaign = actions.campaign(key, name="Spring", currency="USD")
    actions.link(key, campaign["id"], destination_url="https://shop.example.com/a", code="spring")
    text = _text(login(app).get(f"/smstrack/campaigns/{campaign['id']}/install"))
    assert "counts curl as a bot" in text
    assert "curl -i -A 'Mozilla/5.0 (iPhone;" in text and text.count("http://localhost/s/spring") >= 2
    # A localhost address: how to serve on the network for a phone.
    assert "Your phone cannot open 127.0.0.1 links" in text
    assert "SMSTRACK_BASE_URL=http://192.168.1.20:8000 make run HOST=0.0.0.0" in text


def test_the_phone_user_agent_of_the_install_page_gets_a_cookie(app, actions):
    """The curl line of the install page, run: a phone's agent is a person
    (a cookie, a click id), curl's own is a bot."""
    key = actions.api_key("owner@example.com")
    campaign = actions.campaign(key, name="Spring", currency="USD")
    actions.link(key, campaign["id"], destination_url="https://shop.example.com/a", code="spring")
    text = _text(login(app).get(f"/smstrack/campaigns/{campaign['id']}/install"))
    agent = re.search(r"curl -i -A '([^']+)'", text).group(1)
    client = app.test_client()
    phone = client.get("/s/spring", headers={"User-Agent": agent})
    assert phone.status_code == 302 and "smsclid=" in phone.headers["Location"] and phone.headers.get("Set-Cookie")
    bot = app.test_client().get("/s/spring", headers={"User-Agent": "curl/8.5.0"})
    assert bot.status_code == 302 and not bot.headers.get("Set-Cookie")
