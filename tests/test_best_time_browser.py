"""The "Best time to send" panel of the campaign form in a real browser:
gunicorn serving past campaigns in New York, Berlin and Tokyo, headless
Chromium at desktop (1280) and phone (390) widths. Screenshots are kept in
``test-artifacts/`` (gitignored)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from e2e.browser import BIN, DESKTOP, dashboard_tab, require_chromium, screenshot

require_chromium()

from sqlalchemy import create_engine  # noqa: E402

from conftest import PASSWORD_HASH_METHOD, _empty_tables  # noqa: E402
from e2e.seed import Seed  # noqa: E402
from e2e.support import HOST, ROOT, clean_env, free_port, gunicorn  # noqa: E402
from e2e.timing_seed import Send, seed_campaign  # noqa: E402

# Pages and layout: the same on every database, checked in the SQLite pass.
pytestmark = pytest.mark.once

OWNER = "timing-owner@example.com"
PASSWORD = "correct horse battery"
PHONE_390 = {"width": 390, "height": 844}
ZONES = ("America/New_York", "Europe/Berlin", "Asia/Tokyo")


@pytest.fixture(scope="module")
def server(migrated, tmp_path_factory) -> Iterator[str]:
    _empty_tables(migrated)
    tmp = tmp_path_factory.mktemp("best-time-browser")
    port = free_port()
    url = f"http://{HOST}:{port}"
    env = clean_env(
        DATABASE_URL=migrated, SECRET_KEY="best-time-browser-secret", SMSTRACK_BASE_URL=url,
        SMSTRACK_SPOOL_DIR=str(tmp / "spool"), SMSTRACK_PASSWORD_HASH_METHOD=PASSWORD_HASH_METHOD,
        SMSTRACK_QUIET_HOURS="21:00-08:00",
    )
    with Seed(env) as seed:
        owner_id = seed.user(OWNER, PASSWORD)
    engine = create_engine(migrated)
    try:
        with engine.begin() as conn:
            # Ten campaigns: 09:00 to 18:00 local, best at 11:00 (18%), one at 22:00 before the rules.
            for i, hour in enumerate(range(9, 19)):
                for day in (dt.date(2026, 5, 4 + i), dt.date(2026, 6, 1 + i), dt.date(2026, 7, 6 + i)):
                    rate = 18 if hour == 11 else 6 + (hour % 4) * 2
                    seed_campaign(conn, owner_id, day, [Send(z, hour, 150, 150 * rate // 100) for z in ZONES])
            seed_campaign(conn, owner_id, dt.date(2026, 4, 1), [Send(z, 22, 150, 60) for z in ZONES])
    finally:
        engine.dispose()
    with gunicorn(
        BIN / "gunicorn", "wsgi:app", port=port, cwd=ROOT, env=env, log=tmp / "gunicorn.log",
        workers=1, ready_path="/smstrack/login",
    ) as running:
        yield running.url


@pytest.mark.parametrize("size,viewport", [("desktop", DESKTOP), ("phone", PHONE_390)])
def test_the_campaign_form_shows_the_best_time_to_send(browser, server, size, viewport):
    options = {"is_mobile": True, "has_touch": True} if size == "phone" else {}
    with dashboard_tab(browser, server, OWNER, PASSWORD, viewport, **options) as (page, seen):
        page.goto(f"{server}/smstrack/campaigns/new")
        panel = page.locator("[data-st-best-time]")
        summary = panel.locator("[data-best-time-summary]").inner_text()
        assert summary.startswith("Best time to send: 11:00-12:00 local, CTR 18.0% (")
        assert summary.endswith("), 3 campaigns, 1,350 messages")
        # A bar and a whisker per local hour that had messages, 22:00 among
        # them (shaded as quiet hours, never the pick).
        bars = panel.locator("svg g[data-hour]")
        assert sorted(int(bars.nth(i).get_attribute("data-hour")) for i in range(bars.count())) == [*range(9, 19), 22]
        assert panel.locator("rect.st-besttime-best").count() == 1
        assert panel.locator("g[data-hour='11'] rect.st-besttime-best").count() == 1
        assert panel.locator("line.st-besttime-whisker").count() == 3 * 11
        assert panel.locator("rect.st-besttime-quiet").count() == 11
        box = panel.locator("svg").bounding_box()
        assert box["width"] > 200 and box["height"] > 50
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], f"page is {width}px wide"
        panel.scroll_into_view_if_needed()
        screenshot(page, f"best-time-form-{size}")
        assert seen.problems == [] and seen.outside() == []
