"""The snippet tag that the install page recommends follows the app's config."""
from __future__ import annotations

import html
import re

import pytest

from conftest import Actions

CUSTOM = {"SMSTRACK_CLICK_PARAM": "ref", "SMSTRACK_SNIPPET_COOKIE_NAME": "sms_ref", "SMSTRACK_COOKIE_DAYS": 7}
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def install_page(app, campaign_id: int) -> str:
    """A campaign's install page, as its owner (owner@example.com) sees it."""
    client = app.test_client()
    token = _CSRF.search(client.get("/smstrack/login").text).group(1)
    client.post("/smstrack/login", data={"email": "owner@example.com", "password": "correct horse", "csrf_token": token})
    response = client.get(f"/smstrack/campaigns/{campaign_id}/install")
    assert response.status_code == 200
    return html.unescape(response.text)


def tag_of(app, **request) -> str:
    from flask_smstrack.web.snippet import snippet_tag

    with app.test_request_context(**request):
        return snippet_tag()


def test_install_page_shows_the_tag_for_this_config(make_app):
    app = make_app(SMSTRACK_BASE_URL="https://go.example.com", **CUSTOM)
    actions = Actions(app)
    page = install_page(app, actions.campaign(actions.api_key())["id"])
    assert (
        '<script async src="https://go.example.com/smstrack/t.js"'
        ' data-param="ref" data-cookie="sms_ref" data-cookie-days="7"></script>\n<script>\n'
        "  window.smstrack = window.smstrack || function () { (smstrack.q = smstrack.q || []).push(arguments) };"
    ) in page
    assert "the <code>ref</code> parameter or the <code>sms_ref</code> cookie" in page


def test_default_config_needs_no_attributes(app):
    assert tag_of(app) == '<script async src="http://localhost/smstrack/t.js"></script>'


@pytest.mark.parametrize(
    "config,attributes",
    [
        ({"SMSTRACK_CLICK_PARAM": "ref"}, ' data-param="ref"'),
        ({"SMSTRACK_SNIPPET_COOKIE_NAME": "sms_ref"}, ' data-cookie="sms_ref"'),
        ({"SMSTRACK_COOKIE_DAYS": 90}, ' data-cookie-days="90"'),
        ({"SMSTRACK_COOKIE_DAYS": "30"}, ""),  # from the environment: the default all the same
        ({"SMSTRACK_COOKIE_DAYS": 30.0}, ""),
        ({"SMSTRACK_COOKIE_DAYS": 0.5}, ' data-cookie-days="0.5"'),
        ({"SMSTRACK_COOKIE_NAME": "other"}, ""),  # the redirect's own cookie is not the snippet's
        ({"SMSTRACK_CLICK_PARAM": 'a"b'}, ' data-param="a&#34;b"'),
    ],
)
def test_tag_attributes(make_app, config, attributes):
    tag = tag_of(make_app(SMSTRACK_BASE_URL="https://go.example.com/", **config))
    assert tag == f'<script async src="https://go.example.com/smstrack/t.js"{attributes}></script>'


def test_tag_follows_the_url_prefix_and_the_request(make_app):
    app = make_app(SMSTRACK_URL_PREFIX="/track")
    tag = tag_of(app, base_url="https://shop.example.com/app/")
    assert tag == '<script async src="https://shop.example.com/app/track/t.js"></script>'


def test_install_page_explains_the_privacy_modes(make_app):
    app = make_app(**CUSTOM)
    actions = Actions(app)
    page = install_page(app, actions.campaign(actions.api_key())["id"])
    assert "first-party cookie (<code>sms_ref</code>)" in page
    assert "takes the <code>ref</code> parameter out of the address bar" in page
    for attribute in ('data-respect-dnt', 'data-consent="required"', "data-keep-param"):
        assert f"<code>{attribute}</code>" in page
    assert "<strong>Global Privacy Control</strong> on gets no cookie and sends nothing" in page
    assert "smstrack('consent', true);  // when the visitor agrees" in page
