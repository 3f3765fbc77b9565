"""The Channels page and a link's QR code in a real browser: gunicorn
serving campaigns of several channels, headless Chromium logging in, at a
desktop (1280 px) and a phone (390 px) width. Screenshots are kept in
``test-artifacts/`` (gitignored).

Every request stays on 127.0.0.1; no console errors, no page errors, no
Content-Security-Policy violation, no page wider than the screen.
"""
from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from e2e.browser import ARTIFACTS, BIN, DESKTOP, dashboard_tab, require_chromium, screenshot

require_chromium()

from playwright.sync_api import Browser, Page, expect  # noqa: E402
from sqlalchemy import create_engine, insert, select  # noqa: E402

from conftest import PASSWORD_HASH_METHOD, _empty_tables  # noqa: E402
from e2e.seed import Seed  # noqa: E402
from e2e.support import HOST, ROOT, clean_env, free_port, gunicorn  # noqa: E402
from test_dashboard_browser import _WATCH_CSP, assert_fits  # noqa: E402

# Pages and layout: the same on every database, checked in the SQLite pass.
pytestmark = pytest.mark.once

OWNER = "channels-owner@example.com"
PASSWORD = "correct horse battery"
#: A phone as the channel pages are checked at.
PHONE_390 = {"width": 390, "height": 844}


@dataclass
class Site:
    url: str
    qr_campaign: int
    qr_link: int


def _traffic(url: str, campaign_id: int, clicks: int, orders: list[tuple[str, str]], when: dt.datetime) -> None:
    """``clicks`` human clicks on the campaign's first link, the first ones
    buying ``orders`` (amount, currency)."""
    from flask_smstrack.models import Click, Conversion, Link

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            link = conn.execute(select(Link.__table__.c.id).where(Link.__table__.c.campaign_id == campaign_id)).scalar()
            rows = [
                {"click_id": f"ch{campaign_id:04d}{i:020d}", "created_at": when + dt.timedelta(minutes=i),
                 "link_id": link, "campaign_id": campaign_id, "kind": "human", "is_first": True,
                 "human_confirmed": True, "device_type": "mobile", "os": "iOS", "browser": "Mobile Safari",
                 "country": "FR", "referrer_host": None}
                for i in range(clicks)
            ]
            conn.execute(insert(Click.__table__), rows)
            pks = dict(conn.execute(select(Click.__table__.c.click_id, Click.__table__.c.id)
                                    .where(Click.__table__.c.campaign_id == campaign_id)).all())
            if not orders:
                return
            conn.execute(insert(Conversion.__table__), [
                {"created_at": rows[i]["created_at"] + dt.timedelta(minutes=5), "click_pk": pks[rows[i]["click_id"]],
                 "reported_click_id": rows[i]["click_id"], "campaign_id": campaign_id, "link_id": link,
                 "event": "purchase", "revenue": Decimal(amount), "currency": currency, "order_id": f"C{campaign_id}-{i}",
                 "source": "server", "trust": "verified", "owner_id": ""}
                for i, (amount, currency) in enumerate(orders)
            ])
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def site(migrated, tmp_path_factory) -> Iterator[Site]:
    _empty_tables(migrated)
    tmp = tmp_path_factory.mktemp("channels-browser")
    port = free_port()
    url = f"http://{HOST}:{port}"
    env = clean_env(
        DATABASE_URL=migrated,
        SECRET_KEY="channels-browser-secret",
        SMSTRACK_BASE_URL=url,
        SMSTRACK_SPOOL_DIR=str(tmp / "spool"),
        SMSTRACK_PASSWORD_HASH_METHOD=PASSWORD_HASH_METHOD,
    )
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    month_start = now.replace(day=1, hour=0, minute=0, second=0)
    last_month = (month_start - dt.timedelta(days=10)).replace(hour=10)
    plan = [
        ("Spring SMS", "sms", "USD", "40.00", last_month, 14, [("49.00", "USD"), ("25.00", "USD")]),
        ("Newsletter #12", "email", "USD", "15.00", last_month, 22, [("80.00", "USD"), ("19.90", "EUR")]),
        ("Instagram story", "social", "USD", "60.00", month_start + dt.timedelta(minutes=1), 9, [("35.00", "USD")]),
        ("Shop window poster", "qr", "EUR", "120.00", month_start + dt.timedelta(minutes=2), 6, [("64.00", "EUR")]),
        ("Flyer at the fair", "print", "EUR", None, month_start + dt.timedelta(minutes=3), 3, []),
    ]
    ids = {}
    with Seed(env) as seed:
        seed.user(OWNER, PASSWORD)
        for name, channel, currency, cost, sent_at, _, _ in plan:
            fields = {"name": name, "channel": channel, "currency": currency, "sent_at": sent_at.isoformat()}
            if cost:
                fields["cost"] = cost
            ids[channel] = seed.campaign(OWNER, **fields)
            seed.link(ids[channel], f"https://shop.example.com/{channel}", code=f"{channel}-link")
    for _, channel, _, _, sent_at, clicks, orders in plan:
        _traffic(migrated, ids[channel], clicks, orders, sent_at + dt.timedelta(minutes=2))
    from flask_smstrack.models import Link

    engine = create_engine(migrated)
    with engine.connect() as conn:
        qr_link = conn.execute(select(Link.__table__.c.id).where(Link.__table__.c.code == "qr-link")).scalar_one()
    engine.dispose()
    with gunicorn(
        BIN / "gunicorn", "wsgi:app", port=port, cwd=ROOT, env=env, log=tmp / "channels.log",
        workers=2, ready_path="/smstrack/login",
    ) as server:
        yield Site(server.url, ids["qr"], qr_link)


@contextlib.contextmanager
def session(browser: Browser, site: Site, viewport: dict, **options) -> Iterator[tuple[Page, object]]:
    with dashboard_tab(browser, site.url, OWNER, PASSWORD, viewport, **options) as (page, seen):
        page.add_init_script(_WATCH_CSP)
        yield page, seen


def _table(page: Page) -> list[list[str]]:
    return page.evaluate("""Array.from(document.querySelectorAll('table.st-table-channels tbody tr')).map(
        function (tr) { return Array.from(tr.children).map(function (c) { return c.innerText.trim(); }); })""")


@pytest.mark.parametrize("size,viewport", [("desktop", DESKTOP), ("phone", PHONE_390)])
def test_channels_page(browser, site, size, viewport):
    options = {"is_mobile": True, "has_touch": True} if size == "phone" else {}
    with session(browser, site, viewport, **options) as (page, seen):
        page.click("nav.st-nav a:has-text('Channels')")
        expect(page.locator("h1")).to_have_text("Channels")
        rows = _table(page)
        # Last month: SMS (USD), email (EUR revenue only, then USD); this month: social, QR code, print.
        assert [r[0] for r in rows] == ["SMS", "Email", "Email", "Social", "QR code", "Print"]
        assert rows[2][3:] == ["1", "22", "22", "2", "80.00", "15.00", "65.00", "433.3%"]
        assert rows[1][2:] == ["EUR", "0", "0", "0", "0", "19.90", "–", "–", "–"]
        # The table is the CSV the page links to, cell for cell.
        download = page.request.get(site.url + page.locator("#table-channels .st-csv").get_attribute("href"))
        lines = list(csv.reader(io.StringIO(download.text())))
        assert lines[0][:3] == ["channel", "month", "currency"]
        # (A negative amount is kept from spreadsheets' formulas with an apostrophe, as in every CSV.)
        assert [[cell.removeprefix("'") for cell in line[3:10]] for line in lines[1:]] == [
            [cell.replace(",", "").replace("–", "") for cell in r[3:10]] for r in rows
        ]
        # The chart's bars are drawn, the longest full width.
        widths = page.evaluate("""Array.from(document.querySelectorAll('.st-hbars-clicks .st-hbar'))
            .map(function (el) { return el.getBoundingClientRect().width; })""")
        tracks = page.evaluate("document.querySelector('.st-hbars-clicks .st-hbar-track').getBoundingClientRect().width")
        assert len(widths) == 5 and abs(max(widths) - tracks) < 1 and min(widths) > 0, (widths, tracks)
        assert page.locator("[data-st-channels] h3").all_inner_texts() == [
            "Unique clicks", "Revenue (EUR)", "Profit (EUR)", "Revenue (USD)", "Profit (USD)"]
        assert_fits(page)
        screenshot(page, f"channels-{size}")
        assert page.evaluate("window.__cspViolations") == []
    assert seen.problems == []
    assert seen.outside() == []


@pytest.mark.parametrize("size,viewport", [("desktop", DESKTOP), ("phone", PHONE_390)])
def test_campaign_page_qr_link(browser, site, size, viewport):
    options = {"is_mobile": True, "has_touch": True} if size == "phone" else {}
    with session(browser, site, viewport, accept_downloads=True, **options) as (page, seen):
        page.goto(f"{site.url}/smstrack/campaigns/{site.qr_campaign}")
        expect(page.locator(".st-badge-channel")).to_have_text("QR code")
        assert page.locator("a:has-text('Send…')").count() == 0
        qr = page.locator(f"[data-qr-link='{site.qr_link}']")
        expect(qr).to_be_visible()
        assert_fits(page)
        screenshot(page, f"channels-campaign-qr-{size}")
        page.locator("#links").screenshot(path=str(ARTIFACTS / f"channels-campaign-links-{size}.png"))
        with page.expect_navigation():
            qr.click()
        image = page.locator("img.st-qr-image")
        expect(image).to_be_visible()
        assert page.evaluate("document.querySelector('img.st-qr-image').naturalWidth") > 100
        assert f"{site.url}/s/qr-link" in page.inner_text("main")
        assert_fits(page)
        screenshot(page, f"channels-link-qr-{size}")
        with page.expect_download() as info:
            page.click("[data-qr=png]")
        download = info.value
        assert download.suggested_filename == "qr-link-qr.png"
        assert Path(download.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with page.expect_download() as info:
            page.click("[data-qr=svg]")
        assert b"<svg" in Path(info.value.path()).read_bytes()
        assert page.evaluate("window.__cspViolations") == []
    assert seen.problems == []
    assert seen.outside() == []
