"""Conversions from a host app's own code (the shop in ``tests/hostapp``):
``record_conversion`` leaves the host's ``db.session`` alone, upgrades a
browser's record of the same order, and ``conversion_token`` signs the
thank-you page's conversion."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from marshmallow import ValidationError
from sqlalchemy import func, select

import hostapp
from flask_smstrack.models import Conversion
from test_extension import _conversions, host, make_host, shop, staff_link  # noqa: F401  (fixtures)


def _orders(app) -> int:
    with app.app_context():
        return hostapp.db.session.execute(select(func.count()).select_from(hostapp.Order)).scalar_one()


def test_record_conversion_leaves_the_hosts_session_alone(shop, staff_link):  # noqa: F811
    """The shop adds an order to its session, records the conversion (new,
    then replayed) before committing: the order stays pending, unflushed,
    and is committed by the shop's own commit."""
    app = shop.app
    _, click_id = shop.visit(staff_link["link"]["code"])
    with app.test_request_context(headers={"Cookie": f"smsclid={click_id}"}):
        session = hostapp.db.session
        order = hostapp.Order(total=Decimal("49.90"), currency="USD")
        session.add(order)
        assert hostapp.smstrack.current_click().click_id == click_id
        first = hostapp.smstrack.record_conversion(revenue="49.90", currency="USD", order_id="H-1")
        again = hostapp.smstrack.record_conversion(revenue="49.90", currency="USD", order_id="H-1")
        assert (first.duplicate, again.duplicate) == (False, True)
        assert order in session.new and order.id is None
        assert _orders(app) == 0  # nothing of the shop's was committed
        session.commit()
        assert order.id is not None
    assert _orders(app) == 1
    owner = str(staff_link["user_id"])  # the campaign's
    assert [(c.order_id, c.trust, c.owner_id, c.click_pk is not None) for c in _conversions(app)] == [
        ("H-1", "verified", owner, True)
    ]


def test_a_failed_host_transaction_keeps_the_conversion(shop, staff_link):  # noqa: F811
    """The conversion is committed on its own: the shop rolling its own
    transaction back does not take it along."""
    app = shop.app
    with app.test_request_context():
        hostapp.db.session.add(hostapp.Order(total=Decimal("1.00"), currency="USD"))
        hostapp.smstrack.record_conversion(revenue="1.00", currency="USD", order_id="H-2", owner_id="shop")
        hostapp.db.session.rollback()
    assert _orders(app) == 0
    assert [(c.order_id, c.owner_id) for c in _conversions(app)] == [("H-2", "shop")]


def test_the_shops_record_upgrades_the_browsers(shop, staff_link):  # noqa: F811
    """The thank-you page's snippet reports the order first, with a forged
    revenue; the checkout's server-side record replaces it."""
    visitor, click_id = shop.visit(staff_link["link"]["code"])
    beacon = {"type": "conversion", "event": "purchase", "revenue": "0.01", "currency": "USD", "order_id": "77"}
    assert visitor.post("/smstrack/collect", data=json.dumps(beacon), content_type="text/plain").status_code == 202
    with shop.app.test_request_context(headers={"Cookie": f"smsclid={click_id}"}):
        result = hostapp.smstrack.record_conversion(revenue="49.90", currency="USD", order_id="77")
    assert (result.upgraded, result.duplicate, result.attributed) == (True, False, True)
    (conversion,) = _conversions(shop.app)
    assert (conversion.trust, str(conversion.revenue)) == ("verified", "49.9000")
    report = shop.report(staff_link["key"], staff_link["campaign"]["id"])
    assert (report["revenue_verified"], report["revenue_unverified"]) == ({"USD": "49.90"}, {"USD": "0.00"})


def test_conversion_token_from_the_host(shop, staff_link):  # noqa: F811
    with shop.app.test_request_context():
        token = hostapp.smstrack.conversion_token(order_id="T-1", revenue=Decimal("49.9"), currency="usd")
        with pytest.raises(ValidationError):
            hostapp.smstrack.conversion_token(order_id="T-1", revenue=49.9, currency="USD")
    visitor, _ = shop.visit(staff_link["link"]["code"])
    beacon = {"type": "conversion", "event": "purchase", "revenue": "49.90", "currency": "USD", "order_id": "T-1",
              "token": token}
    response = visitor.post("/smstrack/collect", data=json.dumps(beacon), content_type="text/plain")
    assert (response.status_code, response.json["attributed"]) == (202, True)
    (conversion,) = _conversions(shop.app)
    assert (conversion.trust, conversion.campaign_id) == ("verified", staff_link["campaign"]["id"])
    forged = visitor.post("/smstrack/collect", data=json.dumps({**beacon, "revenue": "4990"}), content_type="text/plain")
    assert forged.status_code == 400 and "token" in forged.json["errors"]
    with shop.app.app_context():
        assert hostapp.db.session.execute(select(func.count()).select_from(Conversion)).scalar_one() == 1
