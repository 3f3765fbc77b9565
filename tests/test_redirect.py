from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, text

from conftest import ANDROID, DESKTOP, IMESSAGE_PREVIEW, IPHONE, click_id_of
from flask_smstrack.models import Click


def _clicks(app):
    from wsgi import db

    with app.app_context():
        return db.session.execute(select(Click).order_by(Click.id)).scalars().all()


def test_redirect_records_click_and_sets_cookie(app, actions):
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"])
    response = actions.click(link["code"], headers_extra=None) if False else actions.click(link["code"])
    assert response.status_code == 302
    assert response.headers["Cache-Control"] == "no-store"
    location = urlsplit(response.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "shop.example.com", "/spring")
    query = parse_qs(location.query)
    assert query["src"] == ["sms"]
    click_id = query["smsclid"][0]
    assert len(click_id) >= 16
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"smsclid={click_id};")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=2592000" in cookie
    assert "Secure" not in cookie

    (click,) = _clicks(app)
    assert click.click_id == click_id
    assert (click.kind, click.is_first, click.human_confirmed) == ("human", True, False)
    assert (click.device_type, click.os, click.browser) == ("mobile", "iOS", "Mobile Safari")
    assert click.country == "GB"
    assert click.ip == "81.2.69.0"
    assert click.campaign_id == campaign["id"]
    assert click.created_at.tzinfo is not None


def test_cookie_secure_on_https_and_domain_configurable(make_app):
    from conftest import Actions

    app = make_app(SMSTRACK_COOKIE_DOMAIN=".example.com")
    actions = Actions(app)
    key = actions.api_key()
    link = actions.link(key, actions.campaign(key)["id"])
    response = actions.click(link["code"], base_url="https://go.example.com")
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "Domain=example.com" in cookie.replace("Domain=.", "Domain=")


def test_preview_and_bot_get_redirect_but_no_cookie(app, actions):
    key = actions.api_key()
    link = actions.link(key, actions.campaign(key)["id"])
    for ua in (IMESSAGE_PREVIEW, "WhatsApp/2.23.20.0 A", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", ""):
        response = actions.click(link["code"], ua=ua)
        assert response.status_code == 302
        assert "Set-Cookie" not in response.headers
    kinds = [c.kind for c in _clicks(app)]
    assert kinds == ["preview", "preview", "bot", "bot"]
    assert not any(c.is_first for c in _clicks(app))


def test_global_privacy_control_gets_no_cookie(app, actions):
    """A browser that sends ``Sec-GPC: 1`` is redirected with its click id
    and counted, but keeps no attribution cookie."""
    key = actions.api_key()
    link = actions.link(key, actions.campaign(key)["id"])
    client = app.test_client()
    response = client.get(f"/s/{link['code']}", headers={"User-Agent": IPHONE, "Sec-GPC": "1"})
    assert response.status_code == 302 and "Set-Cookie" not in response.headers
    assert client.get_cookie("smsclid") is None
    (click,) = _clicks(app)
    assert (click.kind, click.is_first, click.click_id) == ("human", True, click_id_of(response))
    other = app.test_client().get(f"/s/{link['code']}", headers={"User-Agent": IPHONE, "Sec-GPC": "0"})
    assert "Set-Cookie" in other.headers


def test_head_redirects_but_never_counts(app, actions):
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"])
    response = actions.client.head(f"/s/{link['code']}", headers={"User-Agent": IPHONE})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("https://shop.example.com/spring")
    report = actions.report(key, campaign["id"])
    assert (report["clicks"], report["unique_clicks"], report["bots"]) == (0, 0, 1)


def test_repeat_visit_is_not_a_new_unique_click(app, actions):
    key = actions.api_key()
    campaign = actions.campaign(key)
    first = actions.link(key, campaign["id"])
    second = actions.link(key, campaign["id"])
    actions.click(first["code"])
    actions.click(second["code"])  # same browser, other link of the campaign: a repeat
    actions.click(first["code"])  # back to the first link: a repeat
    other = app.test_client()
    actions.click(first["code"], ua=ANDROID, client=other)  # another person
    flags = [(c.link_id, c.is_first) for c in _clicks(app)]
    assert flags == [(first["id"], True), (second["id"], False), (first["id"], False), (first["id"], True)]
    report = actions.report(key, campaign["id"])
    assert (report["clicks"], report["unique_clicks"]) == (4, 2)
    # In another campaign, the same person is a new unique click.
    other_campaign = actions.campaign(key, name="Autumn")
    third = actions.link(key, other_campaign["id"])
    actions.click(third["code"])
    assert _clicks(app)[-1].is_first is True


def test_click_id_switch_and_utm(app, actions):
    key = actions.api_key()
    campaign = actions.campaign(key)
    plain = actions.link(key, campaign["id"], append_click_id=False, destination_url="https://example.com/a?x=1")
    assert actions.click(plain["code"]).headers["Location"] == "https://example.com/a?x=1"
    tagged = actions.link(
        key, campaign["id"], destination_url="https://example.com/b", utm={"utm_source": "sms", "utm_campaign": "spring"}
    )
    query = parse_qs(urlsplit(actions.click(tagged["code"]).headers["Location"]).query)
    assert query["utm_source"] == ["sms"] and query["utm_campaign"] == ["spring"] and "smsclid" in query


@pytest.mark.parametrize("append", [True, False])
def test_an_address_with_other_letters_is_sent_as_a_uri(app, actions, append):
    """The 302's Location is what werkzeug makes of the whole address
    (``iri_to_uri``), though the redirect turns each destination into a URI
    once and only adds the click id."""
    from werkzeug.urls import iri_to_uri

    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"], append_click_id=append,
                        destination_url="https://bücher.example/été?q=über&x=«1»#café")
    for _ in range(2):  # the second from what the first remembered
        response = actions.click(link["code"])
        location = response.headers["Location"]
        assert location.isascii() and response.headers["Content-Length"] == "0"
        click_id = parse_qs(urlsplit(location).query).get("smsclid", [""])[0]
        assert bool(click_id) is append
        written = "https://bücher.example/été?q=über&x=«1»" + (f"&smsclid={click_id}" if append else "") + "#café"
        assert location == iri_to_uri(written)


@pytest.mark.parametrize("append", [True, False])
@pytest.mark.parametrize("destination", ["https://shop.example:8443", "https://[::1]:8080/a", "https://u@h.example:8443"])
def test_an_address_with_a_port_is_redirected(app, actions, append, destination):
    from werkzeug.urls import iri_to_uri

    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"], append_click_id=append, destination_url=destination)
    for _ in range(2):
        response = actions.click(link["code"])
        assert response.status_code == 302
        location = response.headers["Location"]
        expected = destination + (("&" if "?" in destination else "?") + location.rpartition("?")[2] if append else "")
        assert location == iri_to_uri(expected)


def test_an_address_werkzeug_cannot_read_is_still_followed():
    """A port out of range makes ``iri_to_uri`` fail: the address is sent as
    written, its other letters percent-encoded, rather than a 500."""
    from flask_smstrack.tracking.clicks import to_uri

    assert to_uri("https://h.example:99999/été?a=1") == "https://h.example:99999/%C3%A9t%C3%A9?a=1"


def test_generated_codes_are_random_base62(app, actions):
    key = actions.api_key()
    campaign = actions.campaign(key)
    codes = {actions.link(key, campaign["id"])["code"] for _ in range(20)}
    assert len(codes) == 20
    assert all(len(c) >= 7 and c.isalnum() for c in codes)


def test_unknown_code_gives_404_page(client):
    response = client.get("/s/doesnotexist")
    assert response.status_code == 404
    assert b"This link does not exist" in response.data


def test_unknown_code_fallback(make_app):
    app = make_app(SMSTRACK_FALLBACK_URL="https://example.com/")
    response = app.test_client().get("/s/doesnotexist")
    assert (response.status_code, response.headers["Location"]) == (302, "https://example.com/")


def test_device_types(app, actions):
    key = actions.api_key()
    link = actions.link(key, actions.campaign(key)["id"])
    actions.click(link["code"], ua=DESKTOP, client=app.test_client())
    actions.click(link["code"], ua=ANDROID, client=app.test_client())
    assert [(c.device_type, c.os, c.browser) for c in _clicks(app)] == [
        ("desktop", "Windows", "Chrome"),
        ("mobile", "Android", "Chrome Mobile"),
    ]


def test_failed_write_still_redirects_and_is_replayed(app, actions, runner, caplog):
    """The clicks table is made unwritable for real; the visitor is still
    redirected, and the spooled click is written once the database is back."""
    from wsgi import db

    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"])
    actions.click(link["code"])  # fills the link cache
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE smstrack_clicks RENAME TO smstrack_clicks_away"))
    try:
        response = actions.click(link["code"])
    finally:
        with app.app_context():
            with db.engine.begin() as conn:
                conn.execute(text("ALTER TABLE smstrack_clicks_away RENAME TO smstrack_clicks"))
    assert response.status_code == 302
    assert "spooled for replay" in caplog.text
    assert len(_clicks(app)) == 1
    result = runner.invoke(args=["smstrack", "replay-spool"])
    assert result.exit_code == 0, result.output
    assert "Wrote 1 clicks" in result.output
    assert [c.click_id for c in _clicks(app)][1] == click_id_of(response)
    assert runner.invoke(args=["smstrack", "replay-spool"]).output.strip() == "The spool is empty."


@pytest.mark.parametrize(
    "destination,expected",
    [
        ("https://example.com/a", "https://example.com/a?smsclid=ID"),
        ("https://example.com/a?q=a%20b&x=", "https://example.com/a?q=a%20b&x=&smsclid=ID"),
        ("https://example.com/a?smsclid=old&k=1#top", "https://example.com/a?k=1&smsclid=ID#top"),
        ("https://example.com/a#/spa/route?x=1", "https://example.com/a?smsclid=ID#/spa/route?x=1"),
    ],
)
def test_click_id_keeps_the_destination_as_written(destination, expected):
    from flask_smstrack.tracking.clicks import click_id_slot

    before, after = click_id_slot(destination, "smsclid")
    assert before + "ID" + after == expected


def test_clicks_without_synchronous_commit(database_url, make_app):
    """With SMSTRACK_CLICK_SYNC_COMMIT off, clicks are still committed before the 302."""
    from conftest import Actions

    if not database_url.startswith("postgresql"):
        pytest.skip("SMSTRACK_CLICK_SYNC_COMMIT is a PostgreSQL setting: set FLASK_SMSTRACK_TEST_DATABASE_URL")
    app = make_app(SMSTRACK_CLICK_SYNC_COMMIT=False)
    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"])
    assert actions.click(link["code"]).status_code == 302
    assert actions.report(key, campaign["id"])["clicks"] == 1
    writer = app.extensions["smstrack"].click_writer
    with app.app_context():
        cursor = writer._connection().cursor()
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "off"
        cursor.close()
        with writer.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
