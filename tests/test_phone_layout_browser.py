"""Every dashboard page on a 390 px phone: nothing wider than the screen
(wide tables scroll inside their card, with a "scroll →" cue), code blocks
whose copy button covers none of the code, and a screenshot of each page in
test-artifacts/ for people to look at.
"""
from __future__ import annotations

import time

import pytest

from e2e.browser import require_chromium, screenshot, screenshot_on_failure

require_chromium()

from e2e.site import OWNER, contexts, open_everything, pages, serve  # noqa: E402

# Pages and layout: the same on every database, checked in the SQLite pass.
pytestmark = pytest.mark.once

PHONE_390 = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def site(migrated, tmp_path_factory):
    with serve(migrated, tmp_path_factory.mktemp("phone")) as running:
        yield running


def _boxes_overlap(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


def test_no_page_is_wider_than_the_phone(browser, site):
    wide = {}
    with contexts(browser, site.url, PHONE_390, is_mobile=True, has_touch=True) as by_user:
        for p in pages(site):
            page = by_user[p.user].new_page()
            try:
                with screenshot_on_failure(page, f"phone-{p.name}-failed"):
                    page.goto(site.url + p.path)
                    screenshot(page, f"phone-{p.name}")
                    open_everything(page)
                    width = page.evaluate("document.documentElement.scrollWidth")
                    if width > 390:
                        wide[p.name] = width
            finally:
                page.close()
    assert not wide, f"pages wider than 390 px: {wide}"


def test_wide_tables_scroll_in_their_card_with_a_cue(browser, site):
    with contexts(browser, site.url, PHONE_390, is_mobile=True, has_touch=True) as by_user:
        page = by_user[OWNER].new_page()
        page.goto(f"{site.url}/smstrack/")
        table = page.locator(".st-card .st-scroll").first
        assert page.evaluate("el => el.scrollWidth > el.clientWidth", table.element_handle())
        cue = page.locator(".st-scrollcue").first
        assert cue.is_visible() and cue.inner_text() == "scroll →"
        assert table.get_attribute("tabindex") == "0" and table.get_attribute("role") == "region"
        # Scrolled to its end, the cue goes.
        page.evaluate("el => { el.scrollLeft = el.scrollWidth; }", table.element_handle())
        # Polled from here: a page-side predicate would need eval, which the CSP refuses.
        deadline = time.monotonic() + 5
        while table.get_attribute("data-st-overflow") is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert table.get_attribute("data-st-overflow") is None
        assert not cue.is_visible()


def test_copy_buttons_cover_no_code(browser, site):
    with contexts(browser, site.url, PHONE_390, is_mobile=True, has_touch=True) as by_user:
        page = by_user[OWNER].new_page()
        page.goto(f"{site.url}/smstrack/campaigns/{site.ab_id}/install")
        open_everything(page)
        blocks = page.locator(".st-codeblock")
        assert blocks.count() >= 4
        for i in range(blocks.count()):
            block = blocks.nth(i)
            button, code = block.locator(".st-copy").bounding_box(), block.locator("pre").bounding_box()
            assert button and code and not _boxes_overlap(button, code), (i, button, code)
