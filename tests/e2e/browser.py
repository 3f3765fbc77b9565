"""Headless Chromium for the browser tests: Debian's binary, the flags that
keep it off the network, and a record of what a page did."""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from e2e.support import HOST, ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"
#: Window sizes the dashboard is checked at.
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
#: The virtual environment's scripts (flask, gunicorn).
BIN = Path(sys.executable).parent


def require_chromium() -> None:
    """Skip the calling test module when Chromium is not installed."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)


@contextlib.contextmanager
def launch():
    """A headless Chromium, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Seen:
    """What happened in the browser while a test ran."""

    urls: list[str] = field(default_factory=list)
    beacons: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def watch(self, page, console: tuple[str, ...] = ("error",)) -> None:
        """Record the page's console messages of these types, its errors and
        its failed requests as problems."""
        page.on("console", lambda m: m.type in console and self.problems.append(f"console {m.type}: {m.text}"))
        page.on("pageerror", lambda err: self.problems.append(f"page error: {err}"))
        page.on("requestfailed", self._failed)

    def _failed(self, request) -> None:
        # The browser's own favicon request is aborted when the page
        # navigates away before it ends (a form posted, a redirect): not a
        # problem of the page.
        if request.failure == "net::ERR_ABORTED" and request.url.endswith("/favicon.svg"):
            return
        self.problems.append(f"request failed: {request.url} {request.failure}")

    def outside(self) -> list[str]:
        """Requests that went anywhere but 127.0.0.1."""
        return [
            url for url in self.urls
            if not url.startswith(("data:", "about:", "blob:")) and urlsplit(url).hostname != HOST
        ]


@contextlib.contextmanager
def dashboard_tab(
    browser, url: str, email: str, password: str, viewport: dict, *, clipboard: bool = False, **options
) -> Iterator[tuple[object, Seen]]:
    """A browser tab logged in to the dashboard at ``url`` through its login
    page (the dashboard sends a visitor there first), and what it saw:
    console errors and warnings, failed requests and 4xx/5xx answers."""
    context = browser.new_context(viewport=viewport, **options)
    if clipboard:
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    seen = Seen()
    context.on("request", lambda request: seen.urls.append(request.url))
    page = context.new_page()
    seen.watch(page, console=("error", "warning"))
    page.on("response", lambda r: r.status >= 400 and seen.problems.append(f"HTTP {r.status}: {r.url}"))
    try:
        page.goto(f"{url}/smstrack/")
        assert urlsplit(page.url).path == "/smstrack/login"
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password)
        with page.expect_navigation():
            page.click("form.st-login button[type=submit]")
        assert urlsplit(page.url).path == "/smstrack/"
        yield page, seen
    finally:
        context.close()


def screenshot(page, name: str) -> None:
    """Keep a full-page screenshot under test-artifacts/ (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@contextlib.contextmanager
def screenshot_on_failure(page, name: str) -> Iterator[None]:
    try:
        yield
    except Exception:
        with contextlib.suppress(Exception):
            screenshot(page, name)
        raise
