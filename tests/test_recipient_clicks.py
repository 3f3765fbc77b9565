"""A recipient's click placed by its own insert (one round trip): the same
rules as ``join_recipient``, with the cases its tuple comparison decides by
``None == None`` and by the visitor cookie."""
from sqlalchemy import select

from conftest import DESKTOP, IPHONE, SMS_BASE, Actions
from flask_smstrack.models import Click
from test_messages import _messages, _setup


def _kinds(app) -> list[tuple[str, bool]]:
    with app.app_context():
        from wsgi import db

        return [(c.kind, c.is_first) for c in db.session.execute(select(Click).order_by(Click.id)).scalars()]


def test_without_stored_addresses_the_same_device_is_a_repeat_and_another_a_forward(make_app):
    app = make_app(SMSTRACK_BASE_URL=SMS_BASE, SMSTRACK_STORE_IP=False)
    sms = Actions(app)
    key, campaign, _ = _setup(sms)
    sms.api("POST", f"/campaigns/{campaign['id']}/messages/prepare", key)
    code = {r["phone"]: r["message"].rsplit("/", 1)[1] for r in _messages(sms, key, campaign["id"])}
    ana = code["+14155550100"]
    sms.click(ana, client=app.test_client())  # no address stored: NULL in both rows
    sms.click(ana, ip="90.12.1.1", client=app.test_client())  # same phone, another network: same device
    sms.click(ana, ua=DESKTOP, client=app.test_client())  # a laptop
    app.test_client().head(f"/s/{ana}", headers={"User-Agent": IPHONE})  # a link preview: a bot, never placed
    assert _kinds(app) == [("human", True), ("human", False), ("forward", False), ("bot", False)]


def test_the_recipients_own_cookie_makes_another_device_a_repeat(make_app):
    app = make_app(SMSTRACK_BASE_URL=SMS_BASE)
    sms = Actions(app)
    key, campaign, _ = _setup(sms)
    sms.api("POST", f"/campaigns/{campaign['id']}/messages/prepare", key)
    code = {r["phone"]: r["message"].rsplit("/", 1)[1] for r in _messages(sms, key, campaign["id"])}
    ana, ben = code["+14155550100"], code["+14155550101"]
    browser = app.test_client()
    sms.click(ana, ua=IPHONE, client=browser)
    # The same browser (its cookie) with another agent and address: Ana again.
    sms.click(ana, ua=DESKTOP, ip="90.12.1.1", client=browser)
    # Ben's first click, from Ana's browser: his first, whoever clicks.
    sms.click(ben, client=browser)
    assert _kinds(app) == [("human", True), ("human", False), ("human", True)]


def test_clicks_spooled_in_an_outage_are_placed_when_replayed(make_app):
    """Clicks that could not be written (the clicks table away, for real) are
    placed by the replay as the redirect would have placed them: the
    recipient's own browser (its cookie) is a repeat, another device a
    forward."""
    from sqlalchemy import text

    from flask_smstrack.tracking.spool import replay_spool
    from wsgi import db

    app = make_app(SMSTRACK_BASE_URL=SMS_BASE)
    sms = Actions(app)
    key, campaign, _ = _setup(sms)
    sms.api("POST", f"/campaigns/{campaign['id']}/messages/prepare", key)
    code = {r["phone"]: r["message"].rsplit("/", 1)[1] for r in _messages(sms, key, campaign["id"])}
    ana = code["+14155550100"]
    browser = app.test_client()
    sms.click(ana, ua=IPHONE, client=browser)  # stored; the link is cached
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE smstrack_clicks RENAME TO smstrack_clicks_away"))
    try:
        # Ana's browser again, with another agent and address: her cookie.
        assert sms.click(ana, ua=DESKTOP, ip="90.12.1.1", client=browser).status_code == 302
        # Someone she forwarded the message to.
        assert sms.click(ana, ua=DESKTOP, ip="90.12.9.9", client=app.test_client()).status_code == 302
    finally:
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE smstrack_clicks_away RENAME TO smstrack_clicks"))
    assert _kinds(app) == [("human", True)]
    with app.app_context():
        assert replay_spool() == (2, 0)
    assert _kinds(app) == [("human", True), ("human", False), ("forward", False)]
