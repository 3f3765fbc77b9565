"""``SMSTRACK_FAST_REDIRECT``: live links' clicks answered before Flask's
dispatch give the same answer and store the same click as the view; every
other request still reaches Flask."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from conftest import DESKTOP, IMESSAGE_PREVIEW, IPHONE, Actions
from flask_smstrack.models import Click
from flask_smstrack.web.fast_redirect import FastRedirect


def _fast(app) -> FastRedirect | None:
    layer = getattr(app.wsgi_app, "app", app.wsgi_app)  # inside ProxyFix, if any
    return layer if isinstance(layer, FastRedirect) else None


def _answers(app) -> list[tuple]:
    """One visitor's clicks as they leave the app, and the clicks stored."""
    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"], destination_url="https://shop.example/été?x=1",
                        utm={"utm_source": "sms"})
    ended = actions.link(key, campaign["id"])
    assert actions.api("PATCH", f"/links/{ended['id']}", key, json={"disabled": True}).status_code == 200
    visits = [
        ("GET", link["code"], IPHONE, {}),
        ("GET", link["code"], IPHONE, {}),  # a repeat: the cookie comes back
        ("GET", link["code"], DESKTOP, {"Sec-GPC": "1", "X-Forwarded-For": "2.125.160.216"}),
        ("HEAD", link["code"], IMESSAGE_PREVIEW, {}),
        ("GET", ended["code"], IPHONE, {}),
        ("GET", "nosuchcode", IPHONE, {}),
        ("GET", "no$such", IPHONE, {}),
        ("POST", link["code"], IPHONE, {}),
    ]
    client = app.test_client()
    seen = []
    for method, code, agent, headers in visits:
        response = client.open(f"/s/{code}", method=method, headers={"User-Agent": agent, **headers},
                               environ_base={"REMOTE_ADDR": "81.2.69.160"})
        location = response.headers.get("Location", "")
        cookie = response.headers.get("Set-Cookie", "")
        seen.append((method, code == link["code"], response.status_code, location.split("smsclid=")[0],
                     "smsclid=" in location, cookie.split("=", 1)[0], cookie.partition(";")[2],
                     response.headers.get("Cache-Control"), response.headers.get("Content-Length")))
    with app.app_context():
        from wsgi import db

        stored = [
            (c.kind, c.is_first, c.device_type, c.country, c.ip, c.bot_reason)
            for c in db.session.execute(select(Click).order_by(Click.id)).scalars()
        ]
    return [*seen, *stored]


def test_the_fast_path_answers_as_the_view_does(make_app, monkeypatch):
    monkeypatch.setenv("SMSTRACK_PROXY_HOPS", "1")
    fast = make_app()
    assert _fast(fast) is not None  # on in the standalone app, inside its ProxyFix
    by_fast = _answers(fast)
    from conftest import _empty_tables

    _empty_tables(fast.config["SQLALCHEMY_DATABASE_URI"])
    flask_only = make_app(SMSTRACK_FAST_REDIRECT=False)
    assert _fast(flask_only) is None
    by_view = _answers(flask_only)
    assert by_fast == by_view
    statuses = [row[2] for row in by_fast[:8]]
    assert statuses == [302, 302, 302, 302, 410, 404, 404, 405]
    assert by_fast[0][3] == "https://shop.example/%C3%A9t%C3%A9?x=1&utm_source=sms&"
    assert by_fast[8 + 2][4] == "2.125.160.0"  # the proxied address, not the proxy's


@pytest.mark.parametrize("outside", [True, False])
def test_mounted_apps_choose_and_a_proxy_fix_stays_outside(outside, tmp_path):
    """In an app of your own the layer is off unless asked for; asked for, it
    goes inside a ProxyFix already wrapped around the app (else outermost),
    so the visitor's address it sees is the proxied one."""
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy
    from werkzeug.middleware.proxy_fix import ProxyFix

    from flask_smstrack import SmsTrack

    for fast in (False, True):
        app = Flask(__name__, instance_path=str(tmp_path / f"instance-{fast}"))
        app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", SECRET_KEY="x", SMSTRACK_FAST_REDIRECT=fast,
                          SMSTRACK_SPOOL_SIZE_BYTES=1 << 20)
        if outside:
            app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)
        db = SQLAlchemy()
        db.init_app(app)
        SmsTrack(db=db).init_app(app)
        if outside:
            assert isinstance(app.wsgi_app, ProxyFix)
            assert isinstance(app.wsgi_app.app, FastRedirect) is fast
        else:
            assert isinstance(app.wsgi_app, FastRedirect) is fast


def test_a_failure_before_the_click_is_recorded_hands_the_click_to_flask(app, monkeypatch, caplog):
    """Anything the layer cannot do before it records a click leaves the
    request to Flask, which records it once and answers as usual."""
    from flask_smstrack.web import fast_redirect

    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"])

    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug in the lookup")

    monkeypatch.setattr(fast_redirect, "find_link", broken)
    response = actions.click(link["code"])
    assert response.status_code == 302 and "smsclid=" in response.headers["Location"]
    assert "handing it to Flask" in caplog.text
    with app.app_context():
        from wsgi import db

        assert db.session.execute(select(Click.click_id)).scalars().all() == [
            response.headers["Location"].rpartition("smsclid=")[2]]
