"""Security headers: on every answer of the dashboard, the API and the
collector; never on the tracked redirect, the snippet, or a host app's own
routes. And the templates need no inline script or style for the policy."""
from __future__ import annotations

import re

import pytest

from flask_smstrack.web.assets import asset_dir
from test_dashboard import login
from test_extension import Shop, make_host  # noqa: F401  (fixture)

_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "Strict-Transport-Security")


def assert_secured(response, https=False) -> None:
    policy = response.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in policy, response.request.path
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy and "data:" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert ("Strict-Transport-Security" in response.headers) is https


def assert_plain(response) -> None:
    assert not set(_HEADERS) & set(response.headers.keys()), (response.request.path, dict(response.headers))


@pytest.fixture
def owned(app, actions):
    actions.user()
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"], code="spring")
    return {"key": key, "campaign": campaign, "link": link}


def test_dashboard_api_and_collector_answers_are_secured(app, actions, owned):
    client = login(app)
    base = f"/smstrack/campaigns/{owned['campaign']['id']}"
    for url in ("/smstrack/", base, f"{base}/install", "/smstrack/campaigns/new", "/smstrack/account/api-keys",
                "/smstrack/account/password", "/smstrack/static/dashboard.css", "/smstrack/static/favicon.svg",
                "/smstrack/campaigns/999999", f"{base}/tables/summary.csv"):
        response = client.get(url)
        assert response.status_code in (200, 404), url
        assert_secured(response)
        response.close()
    anonymous = app.test_client()
    assert_secured(anonymous.get("/smstrack/login"))
    assert_secured(anonymous.get("/smstrack/"))  # the redirect to the login page
    assert_secured(actions.api("GET", "/campaigns", owned["key"]))
    assert_secured(anonymous.get("/smstrack/api/v1/campaigns"))  # 401
    assert_secured(anonymous.get("/smstrack/api/v1/openapi.json"))
    assert_secured(actions.collect({"type": "landing", "click_id": "abc"}))
    assert_secured(actions.collect("{"))  # 400


def test_hsts_over_https_only(make_app, app):
    for url in ("https://localhost/smstrack/login", "https://localhost/smstrack/api/v1/openapi.json"):
        response = app.test_client().get(url)
        assert_secured(response, https=True)
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    quiet = make_app(SMSTRACK_HSTS_MAX_AGE=0)
    assert "Strict-Transport-Security" not in quiet.test_client().get("https://localhost/smstrack/login").headers


def test_redirect_and_snippet_keep_their_own_headers(app, actions, owned):
    redirect = actions.click("spring")
    assert redirect.status_code == 302
    assert_plain(redirect)
    snippet = app.test_client().get("/smstrack/t.js")
    assert snippet.status_code == 200
    assert_plain(snippet)
    assert snippet.headers["Access-Control-Allow-Origin"] == "*"
    assert_plain(app.test_client().get("/s/unknown-code"))


def test_host_routes_keep_their_own_headers(make_host):  # noqa: F811
    app = make_host()
    shop = Shop(app)
    shop.user("alice@shop.example", staff=True)
    client = shop.login("alice@shop.example")
    for url in ("/", "/login", "/checkout"):
        assert_plain(client.get(url))
    assert_secured(client.get("/smstrack/"))
    assert_secured(client.get("/smstrack/api/v1/campaigns"))


def _templates() -> dict[str, str]:
    folder = asset_dir("templates") / "smstrack"
    return {path.name: path.read_text() for path in sorted(folder.glob("*.html"))}


def test_templates_need_no_inline_script_or_style():
    """What the policy would refuse: style attributes, <style> and inline
    <script> elements, on* handlers, javascript: and data: URLs."""
    for name, text in _templates().items():
        # The snippet shown for copying is text in a <code>, not markup.
        markup = re.sub(r"\{\{ copyblock\(.*?\) \}\}", "", text, flags=re.DOTALL)
        assert not re.search(r"\sstyle\s*=", markup), name
        assert "<style" not in markup, name
        assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", markup), name
        assert not re.search(r"\son[a-z]+\s*=", markup), name
        assert "javascript:" not in markup and "data:" not in markup, name


def test_every_size_class_has_its_rule():
    """Sizes and places are classes picked by the templates (st-w-37): each
    one they can pick has its rule in scale.css."""
    css = (asset_dir("static") / "smstrack" / "scale.css").read_text()
    rules = dict(re.findall(r"\.(st-[wlba]-\d+)\{([^}]+)\}", css))
    for prefix, prop in (("w", "width"), ("l", "left"), ("b", "bottom")):
        assert all(rules[f"st-{prefix}-{n}"] == f"{prop}:{n}%" for n in range(101)), prefix
    assert all(rules[f"st-a-{n}"] == f"--a:{n / 20:g}" for n in range(3, 21))
    used = set(re.findall(r"st-([wlba])-\{\{", "".join(_templates().values())))
    assert used == {"w", "l", "b", "a"}
