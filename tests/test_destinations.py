"""Landing-page tests: a link's weighted destinations, the sticky choice of
one per visitor, the destination stored on each click (spooled ones too),
the link caches, and the validation of the API."""
import collections
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from conftest import click_id_of
from flask_smstrack.models import Click
from flask_smstrack.tracking.destinations import Destination, bucket, choose, visitor_key

THREE = [
    {"label": "Spring page", "url": "https://shop.example.com/spring", "weight": 50},
    {"label": "Offer 20%", "url": "https://shop.example.com/offer?x=1", "weight": 30},
    {"label": "Quiz", "url": "https://quiz.example.com/", "weight": 20},
]


def _place(location: str) -> str:
    parts = urlsplit(location)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _stored(app) -> list[tuple[str, int | None]]:
    from wsgi import db

    with app.app_context():
        return [tuple(row) for row in db.session.execute(
            select(Click.click_id, Click.destination_no).order_by(Click.id)).all()]


@pytest.fixture
def split(actions):
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"], destinations=THREE, utm={"utm_source": "sms"})
    return key, campaign, link


def test_link_takes_and_shows_destinations(actions, split):
    key, _, link = split
    assert [(d["number"], d["label"], d["weight"]) for d in link["destinations"]] == [
        (1, "Spring page", 50), (2, "Offer 20%", 30), (3, "Quiz", 20)]
    assert link["destination_url"] == "https://shop.example.com/spring?src=sms"
    plain = actions.link(key, link["campaign_id"])
    assert plain["destinations"] == []


def test_visitor_keeps_destination_and_click_stores_it(app, actions, split):
    _, _, link = split
    first = actions.click(link["code"])
    assert first.status_code == 302
    location = first.headers["Location"]
    # The chosen destination gets the link's UTM and the click id, as the default would.
    assert "utm_source=sms" in location and f"smsclid={click_id_of(first)}" in location
    places = {_place(location)}
    for _ in range(4):  # the test client keeps the attribution cookie
        places.add(_place(actions.click(link["code"]).headers["Location"]))
    assert len(places) == 1
    stored = _stored(app)
    numbers = {number for _, number in stored}
    assert len(stored) == 5 and len(numbers) == 1
    (number,) = numbers
    assert _place(THREE[number - 1]["url"]) == places.pop()
