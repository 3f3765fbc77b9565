"""Landing-page tests: a link's weighted destinations, the sticky choice of
one per visitor (across requests and app instances), the destination stored
on each click (spooled ones too), the link caches, and the validation of the
API and the CLI."""
import hashlib
import json
import uuid
from urllib.parse import urlsplit

import pytest
from sqlalchemy import event, select, text

from conftest import REDIS_URL, Actions, click_id_of, redis_or_fail
from flask_smstrack.models import Click, Link
from flask_smstrack.tracking.destinations import Destination, bucket, choose, visitor_key
from flask_smstrack.tracking.shared_links import decode, encode

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


# The choice itself: a pure function.


def test_choice_is_a_pure_function_of_link_and_key():
    dests = tuple(Destination(i + 1, d["weight"], d["url"], "", "") for i, d in enumerate(THREE))
    assert visitor_key(7, "VISITOR", "CLICK") == "r:7"
    assert visitor_key(None, "VISITOR", "CLICK") == "v:VISITOR"
    assert visitor_key(None, None, "CLICK") == "v:CLICK"
    # Fixed values: the same on every node, worker and version.
    assert bucket(1, "v:abc", 100) == int.from_bytes(hashlib.sha256(b"1:v:abc").digest()[:8], "big") % 100
    assert [choose(1, dests, f"v:{i}").number for i in range(8)] == [2, 2, 1, 1, 1, 3, 2, 3]
    # Another link splits the same visitors independently.
    assert [choose(2, dests, f"v:{i}").number for i in range(8)] != [choose(1, dests, f"v:{i}").number for i in range(8)]


def test_shares_follow_the_weights():
    """20,000 fixed keys: the result never changes, so the tolerance cannot flake."""
    dests = tuple(Destination(i + 1, d["weight"], d["url"], "", "") for i, d in enumerate(THREE))
    n = 20_000
    counts = {1: 0, 2: 0, 3: 0}
    for i in range(n):
        counts[choose(42, dests, f"v:visitor-{i:05d}").number] += 1
    for d in dests:
        assert abs(counts[d.number] / n - d.weight / 100) < 0.015, counts
    # Weights 1 and 1000: the small one still gets its share.
    rare = (Destination(1, 1000, "a", "", ""), Destination(2, 1, "b", "", ""))
    hits = sum(choose(5, rare, f"r:{i}").number == 2 for i in range(n))
    assert 5 <= hits <= 40  # about 20


# The redirect.


def test_link_takes_and_shows_destinations(actions, split):
    key, _, link = split
    assert [(d["number"], d["label"], d["weight"]) for d in link["destinations"]] == [
        (1, "Spring page", 50), (2, "Offer 20%", 30), (3, "Quiz", 20)]
    assert link["destination_url"] == "https://shop.example.com/spring?src=sms"
    assert actions.link(key, link["campaign_id"])["destinations"] == []
    listed = actions.api("GET", f"/campaigns/{link['campaign_id']}/links", key).json["links"]
    assert len(listed[0]["destinations"]) == 3


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
    # A click id the destination already carries is replaced, as for the default.
    assert location.count("smsclid=") == 1


def test_same_cookie_same_destination_on_another_app(make_app, split, app):
    _, _, link = split
    other = make_app()  # another node on the same database
    seen = set()
    for i in range(12):
        browser = app.test_client()
        first = Actions(app).click(link["code"], client=browser)
        cookie = first.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        elsewhere = other.test_client()
        elsewhere.set_cookie("smsclid", cookie)
        again = Actions(other).click(link["code"], client=elsewhere)
        assert _place(again.headers["Location"]) == _place(first.headers["Location"]), i
        seen.add(_place(first.headers["Location"]))
    # New visitors do not all land on one page.
    assert len(seen) >= 2
    stored = _stored(app)
    assert len(stored) == 24 and all(number in (1, 2, 3) for _, number in stored)


def test_recipient_keeps_destination_on_every_device(app, actions, split):
    from wsgi import db

    _, campaign, link = split
    with app.app_context():
        for n in range(1, 9):
            db.session.add(Link(campaign_id=campaign["id"], code=f"own{n:04d}", destination_url="https://x.example/",
                                recipient_id=n, parent_id=link["id"]))
        db.session.commit()
    expected = {}
    for n in range(1, 9):
        dests = tuple(Destination(i + 1, d["weight"], "", "", "") for i, d in enumerate(THREE))
        expected[n] = choose(link["id"], dests, f"r:{n}").number
        places = {_place(Actions(app).click(f"own{n:04d}", ua=ua).headers["Location"])
                  for ua in ("Mozilla/5.0 (iPhone)", "Mozilla/5.0 (Linux; Android 14)", "curl/8")}
        assert places == {_place(THREE[expected[n] - 1]["url"])}
    with app.app_context():
        rows = db.session.execute(select(Click.recipient_id, Click.destination_no, Click.link_id)).all()
    assert {(r, d) for r, d, _ in rows} == set(expected.items())
    assert {link_id for *_, link_id in rows} == {link["id"]}


def test_link_without_destinations_is_unchanged(app, actions):
    key = actions.api_key()
    link = actions.link(key, actions.campaign(key)["id"])
    response = actions.click(link["code"])
    assert _place(response.headers["Location"]) == "https://shop.example.com/spring"
    assert [number for _, number in _stored(app)] == [None]


def test_edit_and_end_the_test(app, actions, split):
    key, _, link = split
    body = actions.api("PATCH", f"/links/{link['id']}", key, json={"destinations": THREE[:2]}).json
    assert [d["label"] for d in body["destinations"]] == ["Spring page", "Offer 20%"]
    for _ in range(3):
        assert _place(Actions(app).click(link["code"]).headers["Location"]) in {
            "https://shop.example.com/spring", "https://shop.example.com/offer"}
    body = actions.api("PATCH", f"/links/{link['id']}", key, json={"destinations": []}).json
    assert body["destinations"] == []
    response = Actions(app).click(link["code"])
    assert _place(response.headers["Location"]) == "https://shop.example.com/spring"
    assert _stored(app)[-1][1] is None


# Caches and the spool.


def _hot_statements(app):
    statements = []
    engine = app.extensions["smstrack"].hot.engine
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    return statements


def test_cached_redirect_makes_no_query_for_destinations(app, split):
    _, _, link = split
    with app.app_context():
        app.extensions["smstrack"].links.clear()
    statements = _hot_statements(app)
    Actions(app).click(link["code"])  # read from the database: the link, then its destinations
    assert sum("smstrack_link_destinations" in s for s in statements) == 1
    statements.clear()
    for _ in range(3):
        assert Actions(app).click(link["code"]).status_code == 302  # new visitors, no cookie
    assert statements == []
    cached = app.extensions["smstrack"].links.get(link["code"])
    assert [d.number for d in cached.destinations] == [1, 2, 3]


def test_shared_cache_round_trip_keeps_destinations():
    from flask_smstrack.tracking.clicks import CachedLink

    dests = (Destination(1, 50, "https://a.example/?u=1", "https://a.example/?u=1&smsclid=", ""),
             Destination(2, 30, "https://b.example/#x", "https://b.example/?smsclid=", "#x"))
    link = CachedLink(1, 2, None, 3, "https://x.example/", True, "https://x.example/?smsclid=", "",
                      False, None, None, dests)
    back = decode(encode(link))
    assert back == link and isinstance(back.destinations[0], Destination)
    # An entry written before destinations existed still reads.
    assert decode(json.dumps(json.loads(encode(link))[:-1])).destinations == ()


def test_other_node_serves_destinations_from_redis_with_no_query(make_app, split, app):
    client = redis_or_fail()
    _, _, link = split
    prefix = f"t-dest-{uuid.uuid4().hex[:10]}"
    config = {"SMSTRACK_REDIS_URL": REDIS_URL, "SMSTRACK_REDIS_PREFIX": prefix,
              "SMSTRACK_RATELIMIT_KEY_PREFIX": prefix}
    one, two = make_app(**config), make_app(**config)
    try:
        first = Actions(one).click(link["code"])  # read from the database, kept in Redis
        assert decode(client.get(f"{prefix}:link:{link['code']}")).destinations
        statements = _hot_statements(two)
        again = Actions(two).click(link["code"], client=two.test_client())
        assert statements == []
        assert again.status_code == 302 and _place(again.headers["Location"]) in {
            _place(d["url"]) for d in THREE}
        assert first.status_code == 302
    finally:
        for node in (one, two):
            if node.extensions["smstrack"].shared:
                node.extensions["smstrack"].shared.close()
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_spooled_clicks_keep_their_destination(app, actions, split):
    from wsgi import db

    _, _, link = split
    actions.click(link["code"])  # the link is cached
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE smstrack_clicks RENAME TO smstrack_clicks_away"))
    try:
        sent = {}
        for _ in range(6):
            response = Actions(app).click(link["code"], client=app.test_client())
            assert response.status_code == 302
            sent[click_id_of(response)] = _place(response.headers["Location"])
    finally:
        with app.app_context():
            with db.engine.begin() as conn:
                conn.execute(text("ALTER TABLE smstrack_clicks_away RENAME TO smstrack_clicks"))
    with app.app_context():
        from flask_smstrack.tracking.spool import replay_spool

        assert replay_spool() == (6, 0)
    stored = dict(_stored(app))
    for click_id, place in sent.items():
        assert _place(THREE[stored[click_id] - 1]["url"]) == place


# Validation.

GOOD = THREE[:2]


@pytest.mark.parametrize(
    ("destinations", "message"),
    [
        ([GOOD[0]], "Give 2 to 10 destinations (got 1), or [] for none."),
        ([{**GOOD[0], "label": f"L{i}"} for i in range(11)], "Give 2 to 10 destinations (got 11)"),
        ([GOOD[0], {**GOOD[1], "label": " spring PAGE "}], "Labels must be unique."),
        ([GOOD[0], {**GOOD[1], "weight": 0}], "Must be greater than or equal to 1 and less than or equal to 1000."),
        ([GOOD[0], {**GOOD[1], "weight": 1001}], "less than or equal to 1000"),
        ([GOOD[0], {**GOOD[1], "weight": "50"}], "Not a valid integer."),
        ([GOOD[0], {**GOOD[1], "weight": 2.5}], "Not a valid integer."),
        ([GOOD[0], {**GOOD[1], "url": "javascript:alert(1)"}], "Must be an absolute http:// or https:// URL."),
        ([GOOD[0], {**GOOD[1], "url": "https://shop.example.com/a b"}], "Must not contain spaces."),
        ([GOOD[0], {"label": "B", "weight": 5}], "Missing data for required field."),
        ([GOOD[0], {**GOOD[1], "label": "  "}], "Must not be blank."),
        ([GOOD[0], {**GOOD[1], "label": "x" * 65}], "Length must be between 1 and 64."),
        ([GOOD[0], {**GOOD[1], "label": "a\x00b"}], ""),
        ("nope", "Not a valid list."),
        ([GOOD[0], "nope"], "Invalid input type."),
        (None, "Field may not be null."),
    ],
)
@pytest.mark.parametrize("how", ["create", "patch"])
def test_bad_destinations_are_a_400_naming_the_field(app, actions, split, destinations, message, how):
    key, campaign, link = split
    body = {"destinations": destinations}
    if how == "create":
        response = actions.api("POST", f"/campaigns/{campaign['id']}/links", key,
                               json={"destination_url": "https://shop.example.com/", **body})
    else:
        response = actions.api("PATCH", f"/links/{link['id']}", key, json=body)
    assert response.status_code == 400, response.json
    errors = response.json["errors"] if "errors" in response.json else response.json
    assert "destinations" in str(errors) and message in str(errors), errors
    # Nothing changed.
    after = actions.api("GET", f"/campaigns/{campaign['id']}/links", key).json["links"]
    assert len(after) == 1 and len(after[0]["destinations"]) == 3


def test_cli_update_link_sets_and_ends_the_test(app, runner, actions, split):
    key, _, link = split
    result = runner.invoke(args=["smstrack", "update-link", link["code"], "--split", "A page=70=https://a.example/?q=1",
                                 "--split", "B page=30=https://b.example/"])
    assert result.exit_code == 0, result.output
    assert "A page (70): https://a.example/?q=1" in result.output
    body = actions.api("GET", f"/campaigns/{link['campaign_id']}/links", key).json["links"][0]
    assert [(d["label"], d["weight"], d["url"]) for d in body["destinations"]] == [
        ("A page", 70, "https://a.example/?q=1"), ("B page", 30, "https://b.example/")]
    bad = runner.invoke(args=["smstrack", "update-link", link["code"], "--split", "A=70=https://a.example/",
                              "--split", "B=0=https://b.example/"])
    assert bad.exit_code != 0 and "destinations" in bad.output and "1000" in bad.output
    wrong = runner.invoke(args=["smstrack", "update-link", link["code"], "--split", "no weight"])
    assert wrong.exit_code == 2 and "LABEL=WEIGHT=URL" in wrong.output
    ended = runner.invoke(args=["smstrack", "update-link", link["code"], "--no-split"])
    assert ended.exit_code == 0, ended.output
    assert actions.api("GET", f"/campaigns/{link['campaign_id']}/links", key).json["links"][0]["destinations"] == []


