"""A dashboard with something on every page, for the page-by-page browser
checks (accessibility, phone layout): gunicorn serving a database with the
Spring sale demo, a small A/B test demo with imported recipients, receipts
and opt-outs, a draft without links, an owner and a second user who has no
campaign yet (the first-run page). Every dashboard page is listed in
:func:`pages`, with whether it needs a logged-in user.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from conftest import PASSWORD_HASH_METHOD, _empty_tables
from e2e.browser import BIN
from e2e.seed import Seed
from e2e.support import HOST, ROOT, clean_env, free_port, gunicorn

OWNER = "site-owner@example.com"
NEWCOMER = "site-newcomer@example.com"
PASSWORD = "correct horse battery"


@dataclass
class Site:
    url: str
    spring_id: int
    ab_id: int
    draft_id: int
    link_id: int


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    #: Who is logged in: the owner, the user without campaigns, or nobody.
    user: str | None = OWNER


def pages(site: Site) -> list[Page]:
    """Every page of the dashboard, by name."""
    spring, ab = f"/smstrack/campaigns/{site.spring_id}", f"/smstrack/campaigns/{site.ab_id}"
    return [
        Page("login", "/smstrack/login", user=None),
        Page("first-run", "/smstrack/", user=NEWCOMER),
        Page("campaign-list", "/smstrack/"),
        Page("campaign-spring", spring),
        Page("campaign-ab", ab),
        Page("campaign-draft", f"/smstrack/campaigns/{site.draft_id}"),
        Page("campaign-new", "/smstrack/campaigns/new"),
        Page("campaign-edit", f"{ab}/edit"),
        Page("link-new", f"{spring}/links/new"),
        Page("link-edit", f"{spring}/links/{site.link_id}/edit"),
        Page("install", f"{ab}/install"),
        Page("install-no-link", f"/smstrack/campaigns/{site.draft_id}/install"),
        Page("send", f"{ab}/send"),
        Page("link-check", f"{spring}/check-links"),
        Page("channels", "/smstrack/channels"),
        Page("qr-code", f"{spring}/links/{site.link_id}/qr"),
        Page("webhooks", "/smstrack/webhooks"),
        Page("api-keys", "/smstrack/account/api-keys"),
        Page("password", "/smstrack/account/password"),
        Page("not-found", "/smstrack/no-such-page"),
        Page("no-such-campaign", "/smstrack/campaigns/999999"),
        Page("short-link-not-found", "/s/no-such-link", user=None),
    ]


@contextlib.contextmanager
def serve(migrated: str, tmp: Path) -> Iterator[Site]:
    """Fill the (emptied) database and serve it until the block ends."""
    from flask_smstrack.demo.ab_test import create_demo_sms_campaign

    _empty_tables(migrated)
    port = free_port()
    url = f"http://{HOST}:{port}"
    env = clean_env(
        DATABASE_URL=migrated,
        SECRET_KEY="site-secret",
        SMSTRACK_BASE_URL=url,
        SMSTRACK_SPOOL_DIR=str(tmp / "spool"),
        SMSTRACK_PASSWORD_HASH_METHOD=PASSWORD_HASH_METHOD,
    )
    with Seed(env) as seed:
        owner_id = seed.user(OWNER, PASSWORD, admin=True)
        seed.user(NEWCOMER, PASSWORD)
        spring_id = seed.demo(OWNER, clicks=400, seed=11)
        with seed.app.app_context():
            ab_id = create_demo_sms_campaign(recipients=300, owner_id=owner_id, seed=11).id
        draft_id = seed.campaign(OWNER, name="Easter teaser (draft)", currency="EUR")
        with seed.app.app_context():
            from flask_smstrack.manage import get_campaign

            link_id = get_campaign(spring_id).links[0].id
    with gunicorn(
        BIN / "gunicorn", "wsgi:app", port=port, cwd=ROOT, env=env, log=tmp / "site.log",
        workers=2, ready_path="/smstrack/login",
    ) as server:
        yield Site(server.url, spring_id, ab_id, draft_id, link_id)


def log_in(context, url: str, email: str) -> None:
    """Log ``email`` in, in this browser context."""
    page = context.new_page()
    try:
        page.goto(f"{url}/smstrack/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("form.st-login button[type=submit]")
        assert urlsplit(page.url).path == "/smstrack/", page.url
    finally:
        page.close()


class _Contexts(dict):
    """A browser context per kind of visitor (:attr:`Page.user`), logged in,
    made when first asked for."""

    def __init__(self, browser, url: str, viewport: dict, options: dict) -> None:
        super().__init__()
        self.browser, self.url, self.viewport, self.options = browser, url, viewport, options

    def __missing__(self, user: str | None):
        context = self[user] = self.browser.new_context(viewport=self.viewport, **self.options)
        if user:
            log_in(context, self.url, user)
        return context


@contextlib.contextmanager
def contexts(browser, url: str, viewport: dict, **options) -> Iterator[dict]:
    """Browser contexts by visitor (``None``, :data:`OWNER`, :data:`NEWCOMER`),
    closed when the block ends."""
    made = _Contexts(browser, url, viewport, options)
    try:
        yield made
    finally:
        for context in made.values():
            context.close()


def open_everything(page) -> None:
    """Open every folded section, so that what it holds is checked too."""
    page.evaluate("document.querySelectorAll('details').forEach(function (d) { d.open = true; })")
