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
