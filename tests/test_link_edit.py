"""Links you can change: the API's PATCH, the redirect of ended links (the
fallback chain, the 410 page, no click stored), the cache, the CLI and the
dashboard's edit form."""
import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from conftest import click_id_of
from flask_smstrack.models import Click, Link
from test_dashboard import csrf_token, login

LATER = "2999-01-31T23:59:00+01:00"
EARLIER = "2001-01-01T00:00:00+00:00"


def _click_count(app) -> int:
    from wsgi import db

    with app.app_context():
        return db.session.execute(select(func.count()).select_from(Click)).scalar()


def _patch(actions, key, link_id, body):
    return actions.api("PATCH", f"/links/{link_id}", key, json=body)


@pytest.fixture
def setup(actions):
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"])
    return key, campaign, link


def test_link_output_has_its_state(setup):
    _, _, link = setup
    assert (link["disabled"], link["expires_at"]) == (False, None)


def test_patch_changes_each_field_and_only_it(app, actions, setup):
    key, _, link = setup
    response = _patch(actions, key, link["id"], {"destination_url": " https://shop.example.com/summer "})
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["destination_url"], body["append_click_id"], body["utm"], body["code"]) == (
        "https://shop.example.com/summer", True, None, link["code"])
    assert body["short_url"] == link["short_url"]
    body = _patch(actions, key, link["id"], {"utm": {"utm_source": "sms", "utm_campaign": "summer"}}).json
    assert body["utm"] == {"utm_source": "sms", "utm_campaign": "summer"}
    assert body["destination_url"] == "https://shop.example.com/summer"
    body = _patch(actions, key, link["id"], {"append_click_id": False}).json
    assert (body["append_click_id"], body["utm"]["utm_source"]) == (False, "sms")
    body = _patch(actions, key, link["id"], {"disabled": True}).json
    assert body["disabled"] is True
    body = _patch(actions, key, link["id"], {"disabled": False, "expires_at": LATER}).json
    assert (body["disabled"], body["expires_at"]) == (False, "2999-01-31T22:59:00+00:00")
    body = _patch(actions, key, link["id"], {"expires_at": None, "utm": None}).json
    assert (body["expires_at"], body["utm"]) == (None, None)
    # The changed link is what the redirect now does, in this process at once.
    response = actions.click(link["code"])
    assert response.headers["Location"] == "https://shop.example.com/summer"
    listed = actions.api("GET", f"/campaigns/{link['campaign_id']}/links", key).json["links"]
    assert [(item["id"], item["disabled"], item["expires_at"]) for item in listed] == [(link["id"], False, None)]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"destination_url": "ftp://x.example/"}, "destination_url", "Must be an absolute http:// or https:// URL."),
        ({"destination_url": None}, "destination_url", "Field may not be null."),
        ({"utm": {"utm_nope": "x"}}, "utm", "Unknown key 'utm_nope'"),
        ({"append_click_id": "perhaps"}, "append_click_id", "Not a valid boolean."),
        ({"disabled": None}, "disabled", "Field may not be null."),
        ({"expires_at": "2027-01-31T23:59:00"}, "expires_at", "Not a valid aware datetime."),
        ({"expires_at": "tomorrow"}, "expires_at", "Not a valid datetime."),
        ({"expires_at": "0001-01-01T00:00:00+05:00"}, "expires_at", "Must be between the years 1970 and 9998."),
        ({}, "_schema", "Give at least one of: append_click_id, destination_url, destinations, disabled, expires_at, utm."),
        ({"code": "newcode"}, "_schema", "Give at least one of"),
    ],
)
def test_patch_refuses_bad_input_naming_field_and_rule(app, actions, setup, body, field, message):
    key, _, link = setup
    response = _patch(actions, key, link["id"], body)
    assert response.status_code == 400, response.json
    assert list(response.json["errors"]) == [field]
    assert response.json["errors"][field][0].startswith(message)
    again = actions.api("GET", f"/campaigns/{link['campaign_id']}/links", key).json["links"][0]
    assert again == link


def test_another_owners_link_is_404_and_unknown_too(app, actions, setup):
    _, _, link = setup
    other = actions.api_key("other@example.com")
    for link_id in (link["id"], 999_999, 2**31 + 5):
        response = _patch(actions, other, link_id, {"disabled": True})
        assert (response.status_code, response.json["errors"]) == (404, {"link_id": [f"No link {link_id}."]})
    admin = actions.api_key("admin@example.com", admin=True)
    assert _patch(actions, admin, link["id"], {"disabled": True}).json["disabled"] is True


def test_ended_link_follows_the_fallback_chain_and_stores_no_click(make_app):
    from conftest import Actions

    app = make_app(SMSTRACK_FALLBACK_URL="https://example.com/ended")
    actions = Actions(app)
    key = actions.api_key()
    with_fallback = actions.campaign(key, fallback_url="https://shop.example.com/other-offers")
    assert with_fallback["fallback_url"] == "https://shop.example.com/other-offers"
    first = actions.link(key, with_fallback["id"])
    second = actions.link(key, actions.campaign(key)["id"])
    assert actions.click(first["code"]).status_code == 302
    assert _click_count(app) == 1
    for link in (first, second):
        assert _patch(actions, key, link["id"], {"disabled": True}).status_code == 200
    response = actions.click(first["code"])
    assert (response.status_code, response.headers["Location"]) == (302, "https://shop.example.com/other-offers")
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    response = actions.click(second["code"])
    assert (response.status_code, response.headers["Location"]) == (302, "https://example.com/ended")
    assert "Set-Cookie" not in response.headers
    assert _click_count(app) == 1


def test_disabled_link_without_fallback_is_a_410_page(app, actions, setup):
    key, _, link = setup
    _patch(actions, key, link["id"], {"disabled": True})
    for method in ("GET", "HEAD"):
        response = actions.client.open(f"/s/{link['code']}", method=method, headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
        assert response.status_code == 410
        assert "Set-Cookie" not in response.headers
    assert "This offer has ended" in actions.click(link["code"]).text
    assert _click_count(app) == 0
    # Enabled again: the next tap goes through at once (same process).
    assert _patch(actions, key, link["id"], {"disabled": False}).status_code == 200
    response = actions.click(link["code"])
    assert response.status_code == 302
    assert _click_count(app) == 1
    with app.app_context():
        from wsgi import db

        assert db.session.execute(select(Click.click_id)).scalar() == click_id_of(response)


def test_expired_link_ends_and_a_later_expiry_brings_it_back(app, actions, setup):
    key, _, link = setup
    actions.click(link["code"])  # now cached as it was
    _patch(actions, key, link["id"], {"expires_at": EARLIER})
    assert actions.click(link["code"]).status_code == 410
    assert _click_count(app) == 1
    _patch(actions, key, link["id"], {"expires_at": LATER})
    assert actions.click(link["code"]).status_code == 302
    _patch(actions, key, link["id"], {"expires_at": None})
    assert actions.click(link["code"]).status_code == 302
    assert _click_count(app) == 3


def test_expiry_passing_while_cached_ends_the_link(app, actions, setup):
    key, _, link = setup
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
    _patch(actions, key, link["id"], {"expires_at": soon.isoformat()})
    assert actions.click(link["code"]).status_code == 302
    import time

    time.sleep(max(0.0, (soon - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 0.05)
    assert actions.click(link["code"]).status_code == 410
    assert _click_count(app) == 1


def _recipient_codes(app, parent_id):
    from wsgi import db

    with app.app_context():
        return db.session.execute(select(Link.code).where(Link.parent_id == parent_id).order_by(Link.id)).scalars().all()


def test_recipients_links_follow_their_campaign_link(app, actions):
    key = actions.api_key()
    campaign = actions.campaign(key, message_template="Hi {first_name}: {link} Reply STOP to opt out")
    link = actions.link(key, campaign["id"])
    actions.client.post(
        f"/smstrack/api/v1/campaigns/{campaign['id']}/recipients", content_type="text/csv",
        data="phone,first_name\n+14155550100,Ana\n+14155550101,Ben\n", headers={"Authorization": f"Bearer {key}"},
    )
    assert actions.api("POST", f"/campaigns/{campaign['id']}/messages/prepare", key).status_code == 200
    ana, ben = _recipient_codes(app, link["id"])
    assert urlsplit(actions.click(ana).headers["Location"]).path == "/spring"  # Ana's link is now cached
    _patch(actions, key, link["id"], {"destination_url": "https://shop.example.com/summer", "utm": {"utm_medium": "sms"}})
    for code in (ana, ben):
        parts = urlsplit(actions.click(code).headers["Location"])
        assert (parts.path, parse_qs(parts.query)["utm_medium"]) == ("/summer", ["sms"])
    assert _click_count(app) == 3
    _patch(actions, key, link["id"], {"disabled": True})
    assert [actions.click(code).status_code for code in (ana, ben)] == [410, 410]
    assert _click_count(app) == 3
    # A recipient's own link is changed through its campaign link only.
    with app.app_context():
        from wsgi import db

        own_id = db.session.execute(select(Link.id).where(Link.code == ana)).scalar()
    response = _patch(actions, key, own_id, {"disabled": False})
    assert (response.status_code, list(response.json["errors"])) == (409, ["link_id"])


def test_cli_update_and_disable_link(app, actions, runner, setup):
    key, _, link = setup
    result = runner.invoke(args=[
        "smstrack", "update-link", link["code"], "--destination", "https://shop.example.com/summer",
        "--utm", "utm_source=sms", "--utm", "utm_campaign=summer", "--no-click-id", "--expires-at", LATER,
    ])
    assert result.exit_code == 0, result.output
    assert f"Link {link['id']} (" in result.output
    assert "-> https://shop.example.com/summer" in result.output
    assert "UTM: utm_source=sms, utm_campaign=summer; click id: off; enabled; expires: 2999-01-31T22:59:00+00:00" in result.output
    assert actions.click(link["code"]).headers["Location"] == (
        "https://shop.example.com/summer?utm_source=sms&utm_campaign=summer")
    result = runner.invoke(args=["smstrack", "disable-link", str(link["id"])])
    assert result.exit_code == 0, result.output
    assert "; disabled; " in result.output
    assert actions.click(link["code"]).status_code == 410
    result = runner.invoke(args=["smstrack", "disable-link", link["code"], "--enable"])
    assert "; enabled; " in result.output
    result = runner.invoke(args=["smstrack", "update-link", str(link["id"]), "--no-expiry", "--click-id", "--no-utm"])
    assert "UTM: none; click id: on; enabled; expires: never" in result.output
    assert actions.click(link["code"]).status_code == 302
    assert _click_count(app) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["update-link", "nosuchcode"], "no link with id or code 'nosuchcode'"),
        (["update-link", "{id}"], "nothing to change"),
        (["update-link", "{id}", "--destination", "mailto:a@b.c"], "destination_url: Must be an absolute http:// or https:// URL."),
        (["update-link", "{id}", "--expires-at", "2027-01-31"], "expires_at: Not a valid aware datetime."),
        (["update-link", "{id}", "--expires-at", LATER, "--no-expiry"], "give --expires-at or --no-expiry, not both"),
        (["update-link", "{id}", "--utm", "utm_source"], "--utm takes KEY=VALUE, not 'utm_source'"),
        (["update-link", "{id}", "--utm", "colour=red"], "utm: Unknown key 'colour'"),
        (["disable-link", "424242"], "no link with id or code '424242'"),
    ],
)
def test_cli_errors_are_clear(app, runner, setup, args, message):
    _, _, link = setup
    result = runner.invoke(args=["smstrack", *[a.format(id=link["id"]) for a in args]])
    assert result.exit_code != 0
    assert message in result.output
    assert _click_count(app) == 0


def test_dashboard_edit_form(app, actions):
    actions.user()
    key = actions.api_key()
    campaign = actions.campaign(key, fallback_url="https://shop.example.com/more")
    link = actions.link(key, campaign["id"], utm={"utm_source": "sms"})
    client = login(app)
    page = client.get(f"/smstrack/campaigns/{campaign['id']}")
    edit = f"/smstrack/campaigns/{campaign['id']}/links/{link['id']}/edit"
    assert f'href="{edit}"' in page.text
    form = client.get(edit)
    assert form.status_code == 200
    assert 'value="https://shop.example.com/spring?src=sms"' in form.text and 'value="sms"' in form.text
    token = csrf_token(client, edit)
    # Without the CSRF token nothing changes.
    response = client.post(edit, data={"destination_url": "https://evil.example/", "disabled": "y"})
    assert response.status_code == 400
    response = client.post(edit, data={
        "csrf_token": token, "destination_url": "nope", "utm_source": "sms", "expires_at": "2027-01-31T10:00",
    })
    assert response.status_code == 400
    assert "Must be an absolute http:// or https:// URL." in response.text
    assert actions.api("GET", f"/campaigns/{campaign['id']}/links", key).json["links"][0] == link
    response = client.post(edit, data={
        "csrf_token": token, "destination_url": "https://shop.example.com/summer", "utm_campaign": "summer",
        "append_click_id": "y", "disabled": "y", "expires_at": "2027-01-31T10:00",
    })
    assert response.status_code == 302, response.text
    saved = actions.api("GET", f"/campaigns/{campaign['id']}/links", key).json["links"][0]
    assert (saved["destination_url"], saved["utm"], saved["append_click_id"], saved["disabled"], saved["expires_at"]) == (
        "https://shop.example.com/summer", {"utm_campaign": "summer"}, True, True, "2027-01-31T10:00:00+00:00")
    response = actions.click(link["code"])
    assert (response.status_code, response.headers["Location"]) == (302, "https://shop.example.com/more")
    assert "disabled</span>" in client.get(f"/smstrack/campaigns/{campaign['id']}").text
    response = client.post(edit, data={"csrf_token": token, "destination_url": "https://shop.example.com/summer"})
    assert response.status_code == 302
    assert actions.click(link["code"]).status_code == 302
    assert _click_count(app) == 1
    # Someone else's campaign: 404, and nothing changes.
    actions.user("other@example.com")
    other = login(app, "other@example.com")
    assert other.get(edit).status_code == 404
    response = other.post(edit, data={"csrf_token": csrf_token(other, "/smstrack/campaigns/new"), "destination_url": "https://evil.example/"})
    assert response.status_code == 404
    assert actions.api("GET", f"/campaigns/{campaign['id']}/links", key).json["links"][0]["destination_url"] == (
        "https://shop.example.com/summer")


def test_gets_change_nothing(app, actions, setup):
    key, campaign, link = setup
    _patch(actions, key, link["id"], {"disabled": True})
    before = actions.api("GET", f"/campaigns/{campaign['id']}/links", key).json
    assert actions.api("GET", f"/links/{link['id']}", key).status_code == 405
    actions.client.get(f"/s/{link['code']}")
    client = login(app)  # the API key's user
    client.get(f"/smstrack/campaigns/{campaign['id']}/links/{link['id']}/edit?disabled=&destination_url=https://x.example/")
    assert actions.api("GET", f"/campaigns/{campaign['id']}/links", key).json == before
    assert _click_count(app) == 0


def test_campaign_fallback_set_in_the_dashboard_reaches_ended_links_at_once(app, actions, setup):
    from test_dashboard import _campaign_form

    key, campaign, link = setup
    _patch(actions, key, link["id"], {"disabled": True})
    assert actions.click(link["code"]).status_code == 410  # cached: ended, no fallback
    client = login(app)
    edit = f"/smstrack/campaigns/{campaign['id']}/edit"
    token = csrf_token(client, edit)
    response = client.post(edit, data={"csrf_token": token, **_campaign_form(fallback_url="javascript:alert(1)")})
    assert response.status_code == 400
    assert "Must be an absolute http:// or https:// URL." in response.text
    response = client.post(edit, data={"csrf_token": token, **_campaign_form(fallback_url="https://shop.example.com/more")})
    assert response.status_code == 302, response.text
    assert actions.api("GET", f"/campaigns/{campaign['id']}", key).json["fallback_url"] == "https://shop.example.com/more"
    response = actions.click(link["code"])
    assert (response.status_code, response.headers["Location"]) == (302, "https://shop.example.com/more")
    assert _click_count(app) == 0


def test_campaign_fallback_is_checked_on_create(actions):
    key = actions.api_key()
    response = actions.api("POST", "/campaigns", key, json={"name": "X", "currency": "USD", "fallback_url": "shop.example.com"})
    assert (response.status_code, response.json["errors"]) == (
        400, {"fallback_url": ["Must be an absolute http:// or https:// URL."]})


def test_cli_create_campaign_with_fallback(app, actions, runner):
    key = actions.api_key()
    result = runner.invoke(args=["smstrack", "create-campaign", "--name", "Flash", "--currency", "USD",
                                 "--fallback-url", "https://shop.example.com/more", "--owner", "owner@example.com", "--quiet"])
    assert result.exit_code == 0, result.output
    campaign_id = int(result.output)
    assert actions.api("GET", f"/campaigns/{campaign_id}", key).json["fallback_url"] == "https://shop.example.com/more"
    result = runner.invoke(args=["smstrack", "create-campaign", "--name", "Flash", "--currency", "USD", "--fallback-url", "nope"])
    assert result.exit_code == 1
    assert "fallback_url: Must be an absolute http:// or https:// URL." in result.output
