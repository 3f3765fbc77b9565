"""The dashboard in a real browser: gunicorn serving a database filled with
the demo campaign (what ``flask smstrack demo`` makes) and a few rows
written directly, headless Chromium logging in, at desktop and phone widths.
Screenshots are kept in ``test-artifacts/`` (gitignored) for people to look at.

Every request stays on 127.0.0.1; no console errors, no page errors, no
page wider than the phone.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from e2e.browser import BIN, DESKTOP, PHONE, Seen, dashboard_tab, require_chromium, screenshot

require_chromium()

from playwright.sync_api import Browser, Page, expect  # noqa: E402
from sqlalchemy import create_engine, insert, select  # noqa: E402

from conftest import PASSWORD_HASH_METHOD, _empty_tables  # noqa: E402
from e2e.seed import Seed  # noqa: E402
from e2e.support import HOST, ROOT, clean_env, fetch, free_port, gunicorn  # noqa: E402

# Pages and layout: the same on every database, checked in the SQLite pass.
pytestmark = pytest.mark.once

OWNER = "dashboard-owner@example.com"
PASSWORD = "correct horse battery"


@dataclass
class Dashboard:
    url: str
    demo_id: int
    winter_id: int
    draft_id: int


def _seed_winter(url: str, owner_id: str) -> tuple[int, int]:
    """A campaign in EUR with 60 human clicks, link previews, a bot and five
    orders (one paid in USD), sent three weeks ago; and a draft without links."""
    from flask_smstrack.models import Campaign, Click, Conversion, Link

    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    sent_at = (now - dt.timedelta(days=21)).replace(hour=9, minute=0, second=0)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            winter = conn.execute(
                insert(Campaign.__table__).returning(Campaign.__table__.c.id),
                {"owner_id": owner_id, "name": "Winter clearance – loyal customers", "currency": "EUR",
                 "cost": Decimal("24.50"), "sent": 1200, "sent_at": sent_at, "status": "sent", "created_at": sent_at},
            ).scalar_one()
            draft = conn.execute(
                insert(Campaign.__table__).returning(Campaign.__table__.c.id),
                {"owner_id": owner_id, "name": "Easter teaser (draft)", "currency": "EUR", "created_at": now},
            ).scalar_one()
            link = conn.execute(
                insert(Link.__table__).returning(Link.__table__.c.id),
                {"campaign_id": winter, "code": "winter-loyal", "destination_url": "https://shop.example.com/winter",
                 "append_click_id": True, "created_at": sent_at},
            ).scalar_one()
            devices = [("mobile", "iOS", "Mobile Safari", "FR"), ("mobile", "Android", "Chrome Mobile", "DE"),
                       ("desktop", "Windows", "Chrome", "FR"), ("tablet", "iPadOS", "Mobile Safari", "BE")]
            clicks = []
            for i in range(60):
                device, os_name, browser, country = devices[i % len(devices)]
                clicks.append({
                    "click_id": f"winter{i:026d}", "created_at": sent_at + dt.timedelta(minutes=3 + i * i // 2),
                    "link_id": link, "campaign_id": winter, "kind": "human", "is_first": i % 6 != 5,
                    "human_confirmed": i % 3 != 0, "device_type": device, "os": os_name, "browser": browser,
                    "country": country, "referrer_host": None,
                })
            for i in range(6):
                clicks.append({
                    "click_id": f"winterpreview{i:019d}", "created_at": sent_at + dt.timedelta(seconds=20 + i),
                    "link_id": link, "campaign_id": winter, "kind": "preview" if i else "bot", "is_first": False,
                    "human_confirmed": False, "device_type": None, "os": None, "browser": None, "country": None,
                    "referrer_host": None,
                })
            conn.execute(insert(Click.__table__), clicks)
            pks = dict(conn.execute(select(Click.__table__.c.click_id, Click.__table__.c.id).where(Click.__table__.c.campaign_id == winter)).all())
            orders = [(3, "89.00", "EUR"), (10, "45.50", "EUR"), (17, "120.00", "EUR"), (25, "38.90", "EUR"), (31, "64.00", "USD")]
            conn.execute(insert(Conversion.__table__), [
                {"created_at": clicks[i]["created_at"] + dt.timedelta(minutes=7 + i), "click_pk": pks[clicks[i]["click_id"]],
                 "reported_click_id": clicks[i]["click_id"], "campaign_id": winter, "link_id": link, "event": "purchase",
                 "revenue": Decimal(revenue), "currency": currency, "order_id": f"W-{i}", "source": "snippet", "trust": "unverified"}
                for i, revenue, currency in orders
            ])
        return winter, draft
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def dashboard(migrated, tmp_path_factory) -> Iterator[Dashboard]:
    _empty_tables(migrated)
    tmp = tmp_path_factory.mktemp("dashboard-browser")
    port = free_port()
    url = f"http://{HOST}:{port}"
    env = clean_env(
        DATABASE_URL=migrated,
        SECRET_KEY="dashboard-browser-secret",
        SMSTRACK_BASE_URL=url,
        SMSTRACK_SPOOL_DIR=str(tmp / "spool"),
        SMSTRACK_TIMEZONE="America/New_York",
        SMSTRACK_PASSWORD_HASH_METHOD=PASSWORD_HASH_METHOD,
    )
    with Seed(env) as seed:
        owner_id = seed.user(OWNER, PASSWORD)
        demo_id = seed.demo(OWNER, clicks=1500, seed=7)
    winter_id, draft_id = _seed_winter(migrated, owner_id)
    with gunicorn(
        BIN / "gunicorn", "wsgi:app", port=port, cwd=ROOT, env=env, log=tmp / "dashboard.log",
        workers=2, ready_path="/smstrack/login",
    ) as server:
        yield Dashboard(server.url, demo_id, winter_id, draft_id)


@contextlib.contextmanager
def session(browser: Browser, dashboard: Dashboard, viewport: dict, **options) -> Iterator[tuple[Page, Seen]]:
    """A logged-in browser tab, and what it saw."""
    with dashboard_tab(browser, dashboard.url, OWNER, PASSWORD, viewport, clipboard=True, **options) as tab:
        yield tab


def assert_fits(page: Page) -> None:
    """Nothing but the tables' own scroll areas is wider than the screen."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"page is {width}px wide"


@pytest.mark.parametrize("size,viewport", [("desktop", DESKTOP), ("phone", PHONE)])
def test_campaign_list_and_page(browser, dashboard, size, viewport):
    options = {"is_mobile": True, "has_touch": True} if size == "phone" else {}
    with session(browser, dashboard, viewport, **options) as (page, seen):
        rows = page.locator("table.st-table-list tbody tr")
        assert rows.count() == 3
        names = [rows.nth(i).locator("th a").inner_text() for i in range(3)]
        assert names == ["Easter teaser (draft)", "Demo: Spring sale", "Winter clearance – loyal customers"]
        winter = rows.nth(2)
        assert "24.50 EUR" in winter.inner_text() and "+ 64.00 USD" in winter.inner_text()
        assert_fits(page)
        screenshot(page, f"dashboard-list-{size}")

        # Sorting by ROI is a plain link in the header.
        with page.expect_navigation():
            page.click("th a:has-text('ROI')")
        assert "sort=roi" in page.url
        assert_fits(page)

        page.goto(f"{dashboard.url}/smstrack/campaigns/{dashboard.demo_id}")
        assert page.locator("h1").inner_text() == "Demo: Spring sale"
        # The four money tiles and the funnel first; six more (verified
        # revenue among them) folded under "More numbers".
        assert page.locator(".st-tiles-hero .st-tile").count() == 4
        assert page.locator(".st-funnel .st-step").count() == 3  # sent, unique clicks, conversions
        assert page.locator("#more-numbers .st-tile").count() == 6
        assert not page.locator("#more-numbers .st-tile").first.is_visible()
        assert page.locator("svg.st-svg").count() == 3
        assert page.locator("svg.st-svg rect.st-bar-clicks").count() > 48
        assert page.locator(".st-heat td.st-heat-on").count() > 20
        assert_fits(page)
        screenshot(page, f"dashboard-campaign-{size}")

        # The chart tells the numbers of a bar when it is pointed at or tapped.
        readout = page.locator("[data-st-chart] [data-st-readout]").first
        before = readout.inner_text()
        bar = page.locator("svg.st-svg").first.locator("rect.st-hit").nth(3)
        bar.tap() if size == "phone" else bar.hover()
        expect(readout).to_contain_text(" clicks (")
        assert readout.inner_text() != before

        # Copy a short link.
        button = page.locator("#links .st-copy").first
        text = page.locator("#links .st-copy-text").first.inner_text()
        assert text.startswith(f"{dashboard.url}/s/")
        button.click()
        expect(button).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == text

        page.goto(f"{dashboard.url}/smstrack/campaigns/{dashboard.winter_id}?tz=Europe/Paris")
        assert "also 64.00 USD (not in profit)" in page.inner_text(".st-tiles-hero")
        assert_fits(page)
        screenshot(page, f"dashboard-campaign-small-{size}")

        page.goto(f"{dashboard.url}/smstrack/campaigns/{dashboard.draft_id}")
        assert "Add the link that goes in your SMS" in page.inner_text("main")
        assert_fits(page)
        screenshot(page, f"dashboard-campaign-empty-{size}")

        page.goto(f"{dashboard.url}/smstrack/campaigns/{dashboard.demo_id}/install")
        assert "Landing ping received." in page.inner_text("main")
        assert_fits(page)
        screenshot(page, f"dashboard-install-{size}")

        # A mistake in a form: the page answers 400 with the schema's message.
        problems = len(seen.problems)
        page.goto(f"{dashboard.url}/smstrack/campaigns/new")
        page.fill("#f-name", "Summer sale")
        page.fill("#f-currency", "XYZ")
        with page.expect_navigation():
            page.click("form.st-form button[type=submit]")
        assert "Not an ISO 4217 currency code" in page.inner_text("main")
        assert_fits(page)
        screenshot(page, f"dashboard-form-error-{size}")
        answer = seen.problems[problems:]
        assert sorted(answer) == sorted([
            f"HTTP 400: {dashboard.url}/smstrack/campaigns/new",
            "console error: Failed to load resource: the server responded with a status of 400 (BAD REQUEST)",
        ]), answer
        del seen.problems[problems:]

    assert seen.problems == []
    assert seen.outside() == []


def test_csv_download_in_the_browser(browser, dashboard):
    with session(browser, dashboard, DESKTOP, accept_downloads=True) as (page, seen):
        page.goto(f"{dashboard.url}/smstrack/campaigns/{dashboard.winter_id}")
        page.click("#breakdowns > summary")
        with page.expect_download() as info:
            page.click("#table-countries .st-csv")
        download = info.value
        assert download.suggested_filename == f"campaign-{dashboard.winter_id}-countries.csv"
        lines = Path(download.path()).read_text().splitlines()
        assert lines[0] == "value,clicks,unique_clicks,conversions,conversion_rate,revenue,share"
        assert lines[1].startswith("FR,30,")
    assert seen.problems == []
    assert seen.outside() == []


def test_stylesheet_is_served(dashboard):
    reply = fetch(f"{dashboard.url}/smstrack/static/dashboard.css")
    assert reply.status == 200 and b".st-tile" in reply.body


#: Records the page's Content-Security-Policy violations (run before any
#: script of the page, by the browser itself: the policy does not apply).
_WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + e.sourceFile + ':' + e.lineNumber);
});
"""


def test_pages_under_the_content_security_policy(browser, dashboard):
    """Every page with the policy on: nothing refused, and what the styles
    and scripts draw (bars, axis labels, heatmap shades, copy buttons,
    chart readouts) still there; the bars and labels without the script too."""
    reply = fetch(f"{dashboard.url}/smstrack/login")
    assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]
    with session(browser, dashboard, DESKTOP) as (page, seen):
        page.add_init_script(_WATCH_CSP)
        campaign = f"{dashboard.url}/smstrack/campaigns/{dashboard.demo_id}"
        pages = ["/smstrack/", campaign, f"{campaign}/install", f"{campaign}/edit", f"{campaign}/links/new",
                 "/smstrack/campaigns/new", "/smstrack/account/api-keys", "/smstrack/account/password"]
        for url in pages:
            # Forms ask the API for their message's segments as they load: let that finish.
            page.goto(url if url.startswith("http") else dashboard.url + url, wait_until="networkidle")
            assert page.evaluate("window.__cspViolations") == [], url
            # The stylesheet applied: the header is laid out by dashboard.css.
            assert page.evaluate("getComputedStyle(document.querySelector('.st-top')).display") != "inline", url

        # Drawn by the stylesheets alone: the same without dashboard.js.
        page.route("**/static/dashboard.js", lambda route: route.fulfill(body="", content_type="text/javascript"))
        page.goto(campaign)
        page.evaluate("document.querySelectorAll('details').forEach(function (d) { d.open = true; })")
        widths = page.evaluate("""Array.from(document.querySelectorAll('.st-hbar, .st-bar'))
            .map(function (el) { return el.getBoundingClientRect().width; })""")
        assert widths and max(widths) > 50, widths
        lefts = page.evaluate("""Array.from(document.querySelectorAll('.st-xaxis span'))
            .map(function (el) { return el.getBoundingClientRect().left; })""")
        assert len(lefts) > 2 and lefts == sorted(set(lefts)), lefts
        panels = page.evaluate("""Array.from(document.querySelectorAll('.st-yaxis')).map(function (axis) {
            return Array.from(axis.children).map(function (el) { return el.getBoundingClientRect().top; }); })""")
        assert len(panels) == 3
        for ticks in panels:  # each panel's ticks go up the axis
            assert len(ticks) > 1 and ticks == sorted(set(ticks), reverse=True), ticks
        shades = page.evaluate("""Array.from(document.querySelectorAll('.st-heat td.st-heat-on'))
            .map(function (el) { return getComputedStyle(el).backgroundColor; })""")
        assert len(set(shades)) > 3, shades
        page.unroute("**/static/dashboard.js")
        page.goto(campaign)
        readout = page.locator("[data-st-chart] [data-st-readout]").first
        page.locator("svg.st-svg").first.locator("rect.st-hit").nth(3).hover()
        expect(readout).to_contain_text(" clicks (")
        button = page.locator("#links .st-copy").first
        button.click()
        expect(button).to_have_text(re.compile("Copied|Selected"))

        # A new API key is shown once, with a copy button.
        page.goto(f"{dashboard.url}/smstrack/account/api-keys")
        page.fill("input[name=name]", "shop server")
        with page.expect_navigation():
            page.click("form.st-form button[type=submit]")
        expect(page.locator("#st-new-key")).to_contain_text("smst_")
        button = page.locator("[data-copy=st-new-key]")
        button.click()
        expect(button).to_have_text(re.compile("Copied|Selected"))
        screenshot(page, "dashboard-api-keys")
        assert page.evaluate("window.__cspViolations") == []
    assert seen.problems == []
    assert seen.outside() == []
