"""The whole journey in a real browser: the SMS link, the tracked redirect, a
landing page on another origin with the snippet, the landing ping, the
purchase on the thank-you page, and the numbers in the report API.

Runs the standalone app and a landing site (``tests/e2e/landing.py``) with
gunicorn, and Debian's headless Chromium through Playwright. Every request
stays on 127.0.0.1.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from e2e.browser import BIN, Seen, require_chromium, screenshot_on_failure

require_chromium()

from playwright.sync_api import Page  # noqa: E402

from conftest import ANDROID, IMESSAGE_PREVIEW, PASSWORD_HASH_METHOD, _empty_tables  # noqa: E402
from e2e.seed import Seed  # noqa: E402
from e2e.support import HOST, ROOT, clean_env, fetch, free_port, gunicorn, poll, report  # noqa: E402

OWNER = "browser-owner@example.com"


@dataclass
class Site:
    tracker: str
    landing: str
    key: str
    seed: Seed
    spool: Path

    def report(self, campaign_id: int) -> dict:
        return report(self.tracker, self.key, campaign_id)

    def spooled(self) -> int:
        """Records the tracker could not write to the database."""
        from flask_smstrack.tracking.spool import waiting_records

        return waiting_records(str(self.spool))


@pytest.fixture(scope="module")
def site(migrated, tmp_path_factory) -> Iterator[Site]:
    """The tracker (``gunicorn -w 2 wsgi:app``) with an admin and an API key,
    and the landing site on a second port: another origin."""
    _empty_tables(migrated)
    tmp = tmp_path_factory.mktemp("browser")
    tracker_port = free_port()
    landing_port = free_port()
    while landing_port == tracker_port:
        landing_port = free_port()
    tracker_url = f"http://{HOST}:{tracker_port}"
    env = clean_env(
        DATABASE_URL=migrated,
        SECRET_KEY="browser-test-secret",
        SMSTRACK_BASE_URL=tracker_url,
        SMSTRACK_SPOOL_DIR=str(tmp / "spool"),
        SMSTRACK_PASSWORD_HASH_METHOD=PASSWORD_HASH_METHOD,
    )
    with gunicorn(
        BIN / "gunicorn", "wsgi:app", port=tracker_port, cwd=ROOT, env=env,
        log=tmp / "tracker.log", workers=2, ready_path="/smstrack/t.js",
    ) as tracker, gunicorn(
        BIN / "gunicorn", "landing:app", port=landing_port, cwd=ROOT / "tests" / "e2e",
        env=clean_env(LANDING_TRACKER_URL=tracker.url), log=tmp / "landing.log", ready_path="/spring",
    ) as landing, Seed(env) as seed:
        key = seed.user_with_key(OWNER)
        yield Site(tracker.url, landing.url, key, seed, tmp / "spool")


@pytest.fixture
def page(browser) -> Iterator[tuple[Page, Seen]]:
    # A phone's user agent: the tracker rightly counts HeadlessChrome as a bot.
    context = browser.new_context(user_agent=ANDROID)
    seen = Seen()

    def on_request(request) -> None:
        seen.urls.append(request.url)
        if request.method == "POST" and urlsplit(request.url).path == "/smstrack/collect":
            seen.beacons.append(json.loads(request.post_data or "null"))

    context.on("request", on_request)
    page = context.new_page()
    seen.watch(page)
    try:
        yield page, seen
    finally:
        context.close()


def test_sms_click_to_purchase_in_a_real_browser(site, page):
    page, seen = page
    campaign_id, short_url = site.seed.campaign_with_link(OWNER, f"{site.landing}/spring?utm_source=sms", "spring-e2e")
    assert short_url == f"{site.tracker}/s/spring-e2e"

    with screenshot_on_failure(page, "sms-click-to-purchase"):
        # The visitor taps the link in the SMS.
        response = page.goto(short_url)
        assert response is not None and response.status == 200
        landed = urlsplit(response.url)
        assert f"{landed.scheme}://{landed.netloc}{landed.path}" == f"{site.landing}/spring"
        query = parse_qs(landed.query)
        assert query["utm_source"] == ["sms"]
        (click_id,) = query["smsclid"]
        # The snippet read the click id, then took it out of the address bar.
        assert page.url == f"{site.landing}/spring?utm_source=sms"

        hop = response.request.redirected_from
        assert hop is not None and hop.url == short_url
        redirect = hop.response()
        assert redirect is not None and redirect.status == 302
        tracker_cookie = {c["name"]: c for c in page.context.cookies(site.tracker)}["smsclid"]
        assert tracker_cookie["value"] == click_id and tracker_cookie["httpOnly"]

        # The snippet keeps the click id in its own cookie and pings the tracker.
        assert page.evaluate("document.cookie") == f"_smsclid={click_id}"
        numbers = poll(lambda: site.report(campaign_id), lambda r: r["human_confirmed"] == 1)
        assert numbers["human_confirmed"] == 1, numbers

        # The purchase: the thank-you page has no click id in its URL.
        with page.expect_navigation():
            page.click("#buy")
        assert urlsplit(page.url).path == "/thanks" and "smsclid" not in page.url
        assert page.inner_text("#order") == "Order A-1001 is confirmed."
        numbers = poll(lambda: site.report(campaign_id), lambda r: r["conversions"] >= 1)

    assert {k: numbers[k] for k in ("clicks", "unique_clicks", "previews", "bots", "human_confirmed")} == {
        "clicks": 1, "unique_clicks": 1, "previews": 0, "bots": 0, "human_confirmed": 1,
    }
    assert numbers["conversions"] == 1 and numbers["unattributed_conversions"] == 0
    assert numbers["revenue"] == {"USD": "49.90"}
    # Attributed by the click id the snippet sent, not by the tracker's cookie.
    assert seen.beacons == [
        {"type": "landing", "click_id": click_id},
        {"type": "conversion", "click_id": click_id, "event": "purchase", "revenue": "49.90",
         "currency": "USD", "order_id": "A-1001"},
    ]
    assert f"{site.tracker}/smstrack/t.js" in seen.urls
    assert seen.problems == []
    assert seen.outside() == []
    assert site.spooled() == 0


def test_imessage_link_preview_is_counted_apart(site):
    campaign_id, short_url = site.seed.campaign_with_link(OWNER, f"{site.landing}/spring", "spring-preview")

    reply = fetch(short_url, headers={"User-Agent": IMESSAGE_PREVIEW})

    assert reply.status == 302
    location = urlsplit(reply.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{site.landing}/spring"
    assert "smsclid" in parse_qs(location.query)
    assert reply.headers.get("Set-Cookie") is None
    numbers = site.report(campaign_id)
    assert {k: numbers[k] for k in ("clicks", "unique_clicks", "previews", "bots", "human_confirmed")} == {
        "clicks": 0, "unique_clicks": 0, "previews": 1, "bots": 0, "human_confirmed": 0,
    }
    assert site.spooled() == 0
