"""The Messages card in a real browser: gunicorn serving a campaign with two
variants, 300 recipients and exported messages, and 50 people tapping their
own links; headless Chromium logs in, presses "Prepare
messages" and reads the flash and the A/B verdict, at desktop and phone
widths. Screenshots are kept in ``test-artifacts/``."""
from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from e2e.browser import BIN, DESKTOP, PHONE, Seen, dashboard_tab, require_chromium, screenshot, screenshot_on_failure

require_chromium()

from playwright.sync_api import Browser, Page, expect  # noqa: E402

from conftest import IPHONE, PASSWORD_HASH_METHOD, _empty_tables  # noqa: E402
from e2e.seed import Seed  # noqa: E402
from e2e.support import HOST, ROOT, clean_env, fetch, free_port, gunicorn  # noqa: E402

# Pages and layout: the same on every database, checked in the SQLite pass.
pytestmark = pytest.mark.once

OWNER = "messages-owner@example.com"
PASSWORD = "correct horse battery"


@dataclass
class Site:
    url: str
    campaign_id: int


@pytest.fixture(scope="module")
def site(migrated, tmp_path_factory) -> Iterator[Site]:
    _empty_tables(migrated)
    tmp = tmp_path_factory.mktemp("messages-browser")
    port = free_port()
    url = f"http://{HOST}:{port}"
    env = clean_env(
        DATABASE_URL=migrated,
        SECRET_KEY="messages-browser-secret",
        SMSTRACK_BASE_URL=url,
        SMSTRACK_SPOOL_DIR=str(tmp / "spool"),
        SMSTRACK_PASSWORD_HASH_METHOD=PASSWORD_HASH_METHOD,
    )
    with Seed(env) as seed:
        seed.user(OWNER, PASSWORD)
        campaign_id = seed.campaign(OWNER, name="Spring sale – A/B", currency="USD", cost_per_segment="0.0079")
        seed.link(campaign_id, "https://shop.example.com/spring")
        seed.variant(campaign_id, "A", "Hi {first_name}, our spring sale is on: {link}")
        seed.variant(campaign_id, "B", "{first_name}, 30% off everything until midnight: {link}")
        people = "phone,first_name\n" + "".join(f"+1415555{1000 + i:04d},P{i}\n" for i in range(300))
        assert seed.recipients(campaign_id, people) == 300
        messages = seed.export_messages(campaign_id)
        assert len(messages) == 300
        # Latecomers for the next batch: imported, not prepared yet.
        late = "phone,first_name\n" + "".join(f"+1415555{2000 + i:04d},L{i}\n" for i in range(12))
        assert seed.recipients(campaign_id, late) == 12
    with gunicorn(
        BIN / "gunicorn", "wsgi:app", port=port, cwd=ROOT, env=env, log=tmp / "messages.log",
        workers=2, ready_path="/smstrack/login",
    ) as server:
        # 10 of A's 150 people tap their link, 40 of B's.
        taps = {"A": 10, "B": 40}
        for row in messages:
            if taps[row["variant"]]:
                taps[row["variant"]] -= 1
                path = urlsplit(row["message"].rsplit(" ", 1)[1]).path
                assert fetch(server.url + path, headers={"User-Agent": IPHONE}).status == 302
        yield Site(server.url, campaign_id)


@contextlib.contextmanager
def session(browser: Browser, site: Site, viewport: dict, **options) -> Iterator[tuple[Page, Seen]]:
    """A logged-in browser tab, and what it saw."""
    with dashboard_tab(browser, site.url, OWNER, PASSWORD, viewport, **options) as tab:
        yield tab


@pytest.mark.parametrize("size,viewport", [("desktop", DESKTOP), ("phone", PHONE)])
def test_prepare_messages_and_read_the_ab_test(browser, site, size, viewport):
    options = {"is_mobile": True, "has_touch": True} if size == "phone" else {}
    with session(browser, site, viewport, **options) as (page, seen), screenshot_on_failure(page, f"messages-failed-{size}"):
        page.goto(f"{site.url}/smstrack/campaigns/{site.campaign_id}")
        card = page.locator("#messages")
        expect(card.locator("[data-status=exported] .st-status-count")).to_have_text("300")
        with page.expect_navigation():
            card.get_by_role("button", name="Prepare messages").click()
        assert urlsplit(page.url).path == f"/smstrack/campaigns/{site.campaign_id}"
        expect(page.locator(".st-flash")).to_have_text("12 messages ready (A: 6, B: 6).")
        expect(card.locator("[data-status=ready] .st-status-count")).to_have_text("12")
        verdict = card.locator(".st-verdict").first
        expect(verdict).to_have_text("B beats A on CTR: 26.7% vs 6.7% (p < 0.001, >99.9% probability to be better).")
        expect(verdict).to_have_class(re.compile(r"\bst-verdict-called\b"))
        rows = card.locator("table.st-table-abtest tbody tr")
        assert rows.count() == 2
        assert rows.nth(1).locator("td").nth(4).inner_text() == "26.7%"
        # 300 segments x 0.0079 USD.
        assert "2.37 USD" in card.locator(".st-facts").inner_text()
        expect(card.get_by_role("button", name="Export messages (CSV)")).to_be_visible()
        expect(card.get_by_role("link", name="Clicked, did not convert", exact=True)).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], f"page is {width}px wide"
        card.scroll_into_view_if_needed()
        screenshot(page, f"dashboard-messages-{size}")
    assert seen.problems == []
    assert [u for u in seen.urls if urlsplit(u).hostname not in (HOST, None)] == []


def test_the_form_counts_segments_as_you_type(browser, site):
    with session(browser, site, DESKTOP) as (page, seen), screenshot_on_failure(page, "form-live-failed"):
        page.goto(f"{site.url}/smstrack/campaigns/{site.campaign_id}/edit")
        # The variants' messages are counted as the page opens.
        expect(page.locator("[data-live=variant_0_message_template]")).to_have_text(
            re.compile(r"^GSM-7 · \d+ characters · 1 segment$")
        )
        area = page.locator("#f-message_template")
        live = page.locator("[data-live=message_template]")
        area.fill("Hi {first_name}, spring sale: {link}")
        expect(live).to_have_text(re.compile(r"^GSM-7 · \d+ characters · 1 segment$"))
        # No opt-out instruction: a warning of its own, under the count.
        warning = page.locator("[data-live-warnings=message_template]")
        expect(warning).to_have_text(re.compile(r"^No opt-out instruction: add one such as “Reply STOP to opt out”"))
        expect(warning).to_be_visible()
        area.fill("Hi {first_name}, spring sale: {link} Reply STOP to opt out")
        expect(warning).to_be_hidden()
        expect(live).to_have_text(re.compile(r"^GSM-7 · \d+ characters · 1 segment$"))
        area.fill("Spring sale 🌷 " + "x" * 40 + " {link}")
        expect(live).to_have_text(re.compile(
            r"^UCS-2 · \d+ characters · 2 segments — The short link takes this message from 1 to 2 segments"
        ))
        expect(live).to_have_class(re.compile(r"\bst-warning\b"))
        screenshot(page, "campaign-form-variants")
        area.fill("")
        expect(live).to_have_text("")
    assert seen.problems == []


def test_export_downloads_the_messages_and_counts_them_sent(browser, site):
    with session(browser, site, DESKTOP) as (page, seen), screenshot_on_failure(page, "export-failed"):
        page.goto(f"{site.url}/smstrack/campaigns/{site.campaign_id}")
        card = page.locator("#messages")
        with page.expect_navigation():
            card.get_by_role("button", name="Prepare messages").click()
        expect(card.locator("[data-status=ready] .st-status-count")).to_have_text("12")
        # A form (with its CSRF token): the file comes down and the page stays.
        with page.expect_download() as download:
            card.get_by_role("button", name="Export messages (CSV)").click()
        assert download.value.suggested_filename == f"campaign-{site.campaign_id}-messages.csv"
        assert len(Path(download.value.path()).read_text().splitlines()) == 1 + 312
        page.reload()
        expect(card.locator("[data-status=exported] .st-status-count")).to_have_text("312")
        expect(card.get_by_role("button", name="Export messages (CSV)")).to_have_count(0)
        expect(card.get_by_role("link", name="Download messages (CSV)")).to_be_visible()
    # Chromium reports the form's navigation that became a download as aborted.
    assert [p for p in seen.problems if "/messages/export net::ERR_ABORTED" not in p] == []
