"""Every dashboard page checked by axe-core in a real browser, at desktop
and phone widths, folded sections opened: no critical, serious or moderate
violation.

axe-core comes from npm, pinned by ``tests/e2e/package-lock.json``
(``npm ci --prefix tests/e2e``, which ``.ci/run`` does). Without it the
test is skipped, except in CI, where it fails.
"""
from __future__ import annotations

import json
import os

import pytest

from e2e.browser import DESKTOP, require_chromium, screenshot_on_failure
from e2e.support import ROOT

require_chromium()

from e2e.site import OWNER, contexts, open_everything, pages, serve  # noqa: E402

# Pages and layout: the same on every database, checked in the SQLite pass.
pytestmark = pytest.mark.once

AXE = ROOT / "tests" / "e2e" / "node_modules" / "axe-core" / "axe.min.js"
PHONE_390 = {"width": 390, "height": 844}
#: The impacts that fail the test ("minor" ones are left to people).
FAILING = ("critical", "serious", "moderate")


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.exists():
        message = f"{AXE} is missing: run `npm ci --prefix tests/e2e`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return AXE.read_text()


@pytest.fixture(scope="module")
def site(migrated, tmp_path_factory):
    with serve(migrated, tmp_path_factory.mktemp("a11y")) as running:
        yield running


def _violations(page, axe_source: str) -> list[dict]:
    """axe's violations on the page, of the failing impacts."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(axe_source)
    found = page.evaluate("""() => axe.run(document, {resultTypes: ['violations']}).then(function (r) {
        return r.violations.map(function (v) {
            return {id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.slice(0, 5).map(function (n) { return n.target.join(' ') + ': ' + n.failureSummary; })};
        });
    })""")
    return [v for v in found if v["impact"] in FAILING]


@pytest.mark.parametrize("size,viewport", [("desktop", DESKTOP), ("phone", PHONE_390)])
def test_every_page_passes_axe(browser, site, axe_source, size, viewport):
    options = {"is_mobile": True, "has_touch": True} if size == "phone" else {}
    failures = {}
    with contexts(browser, site.url, viewport, **options) as by_user:
        for p in pages(site):
            page = by_user[p.user].new_page()
            try:
                with screenshot_on_failure(page, f"a11y-{p.name}-{size}"):
                    response = page.goto(site.url + p.path)
                    assert response is not None
                    open_everything(page)
                    found = _violations(page, axe_source)
                    if found:
                        failures[p.name] = found
            finally:
                page.close()
    assert not failures, json.dumps(failures, indent=1)


def test_axe_finds_a_problem(browser, site, axe_source):
    """The check can fail: a text box without a label is reported."""
    with contexts(browser, site.url, DESKTOP) as by_user:
        page = by_user[OWNER].new_page()
        page.goto(f"{site.url}/smstrack/")
        page.evaluate("""document.querySelector('main').insertAdjacentHTML('beforeend',
            '<input type="text" name="unlabelled">')""")
        assert "label" in {v["id"] for v in _violations(page, axe_source)}


def test_skip_link_moves_focus_to_the_content(browser, site):
    with contexts(browser, site.url, DESKTOP) as by_user:
        page = by_user[OWNER].new_page()
        page.goto(f"{site.url}/smstrack/campaigns/{site.spring_id}")
        page.keyboard.press("Tab")
        skip = page.locator(".st-skip")
        assert page.evaluate("document.activeElement.className") == "st-skip"
        assert skip.bounding_box()["y"] >= 0  # shown while it has focus
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "st-main"


def test_focus_ring_contrast(browser, site):
    """The focus outline stands out from the white page by at least 3:1."""
    with contexts(browser, site.url, DESKTOP) as by_user:
        page = by_user[OWNER].new_page()
        page.goto(f"{site.url}/smstrack/")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        color = page.evaluate("getComputedStyle(document.activeElement).outlineColor")
    channels = [int(c) / 255 for c in color[color.index("(") + 1:color.index(")")].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    assert (1.05) / (luminance + 0.05) >= 3, color
