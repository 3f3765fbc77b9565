"""Conversions you can trust: order ids are unique per owner and event, a
verified record upgrades an unverified one (never the reverse), conversion
tokens make a browser's conversion verified, refunds, and reports that keep
verified and unverified revenue apart, with exact rollups throughout."""
import datetime as dt

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from conftest import ANDROID, click_id_of
from flask_smstrack.models import Campaign, Conversion, ConversionRollup, Refund
from flask_smstrack.reports import rollups
from flask_smstrack.reports.campaign import CampaignData
from flask_smstrack.reports.export import table_json
from flask_smstrack.reports.tables import campaign_table
from test_reports import TABLE_NAMES

ORDER = {"event": "purchase", "revenue": "49.90", "currency": "USD", "order_id": "A-1001"}


@pytest.fixture
def alice(app, actions):
    """Alice's campaign, a link, and one human click on it."""
    key = actions.api_key("alice@example.com")
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"])
    response = actions.click(link["code"])
    return {"key": key, "campaign": campaign, "link": link, "click_id": click_id_of(response)}


def _rows(app, model=Conversion, *where):
    from wsgi import db

    with app.app_context():
        return db.session.execute(select(model).where(*where).order_by(model.id)).scalars().all()


def _beacon(click_id, **fields):
    return {"type": "conversion", "click_id": click_id, **ORDER, **fields}


def _token(actions, key, **fields):
    response = actions.api("POST", "/conversion-tokens", key, json={**ORDER, **fields})
    assert response.status_code == 200, response.json
    return response.json["token"]


# -- order ids per owner ------------------------------------------------------


def test_another_owner_learns_nothing_about_an_order_id(app, actions, alice):
    """Bob posts, with his own key, an order id that Alice's campaign has: he
    gets a conversion of his own, as for an order id that exists nowhere,
    never hers."""
    body = {**ORDER, "click_id": alice["click_id"], "revenue": "120.00"}
    assert actions.api("POST", "/conversions", alice["key"], json=body).status_code == 201
    bob = actions.api_key("bob@example.com")

    taken = actions.api("POST", "/conversions", bob, json={**ORDER, "revenue": "1.00"})
    fresh = actions.api("POST", "/conversions", bob, json={**ORDER, "order_id": "NOWHERE-1", "revenue": "1.00"})
    assert (taken.status_code, fresh.status_code) == (201, 201)
    strip = {"id", "created_at", "order_id"}
    assert {k: v for k, v in taken.json.items() if k not in strip} == {k: v for k, v in fresh.json.items() if k not in strip}
    assert (taken.json["revenue"], taken.json["campaign_id"], taken.json["duplicate"]) == ("1.00", None, False)

    # Naming her click does not reach her conversion either.
    with_click = actions.api("POST", "/conversions", bob, json={**ORDER, "order_id": "A-1001", "click_id": alice["click_id"]})
    assert (with_click.status_code, with_click.json["id"], with_click.json["attributed"]) == (200, taken.json["id"], False)
    report = actions.report(alice["key"], alice["campaign"]["id"])
    assert (report["conversions"], report["revenue"]) == (1, {"USD": "120.00"})
    owners = sorted((c.owner_id, c.order_id, str(c.revenue)) for c in _rows(app))
    assert owners == [("1", "A-1001", "120.0000"), ("2", "A-1001", "1.0000"), ("2", "NOWHERE-1", "1.0000")]


def test_the_database_enforces_one_order_id_per_owner_and_event(app):
    from wsgi import db

    row = {"created_at": dt.datetime.now(dt.timezone.utc), "event": "purchase", "order_id": "X-1",
           "source": "server", "trust": "verified", "refunded": 0}
    with app.app_context():
        db.session.execute(insert(Conversion), [{**row, "owner_id": "1"}, {**row, "owner_id": "2"}])
        db.session.execute(insert(Conversion), [{**row, "owner_id": "1", "event": "signup"}])
        db.session.commit()
        with pytest.raises(IntegrityError):
            db.session.execute(insert(Conversion), [{**row, "owner_id": "2"}])
        db.session.rollback()
        assert db.session.execute(select(func.count()).select_from(Conversion)).scalar() == 3


def test_the_collector_answer_says_nothing_about_stored_order_ids(actions, alice):
    first = actions.collect(_beacon(alice["click_id"]))
    again = actions.collect(_beacon(alice["click_id"]))
    assert first.status_code == again.status_code == 202
    assert first.json == again.json == {"status": "accepted", "attributed": True}


# -- verified upgrades unverified, never the reverse ------------------------


def test_a_verified_conversion_upgrades_the_browsers(app, actions, alice):
    """A browser posts a predictable order id first, with a small revenue:
    the owner's verified conversion replaces it instead of being its
    duplicate."""
    assert actions.collect(_beacon(alice["click_id"], revenue="0.01", currency="EUR")).status_code == 202
    response = actions.api("POST", "/conversions", alice["key"], json={**ORDER, "revenue": "89.00"})
    assert response.status_code == 200, response.json
    assert (response.json["upgraded"], response.json["duplicate"]) == (True, False)
    assert (response.json["trust"], response.json["revenue"], response.json["currency"]) == ("verified", "89.00", "USD")
    assert response.json["campaign_id"] == alice["campaign"]["id"]  # the browser's click is kept
    (row,) = _rows(app)
    assert (row.trust, row.source, str(row.revenue), row.currency) == ("verified", "server", "89.0000", "USD")
    report = actions.report(alice["key"], alice["campaign"]["id"])
    assert (report["conversions"], report["revenue"], report["revenue_verified"]) == (1, {"USD": "89.00"}, {"USD": "89.00"})

    replay = actions.api("POST", "/conversions", alice["key"], json={**ORDER, "revenue": "1.00"})
    assert (replay.status_code, replay.json["duplicate"], replay.json["revenue"]) == (200, True, "89.00")


def test_an_unverified_conversion_never_overrides_a_verified_one(app, actions, alice):
    body = {**ORDER, "click_id": alice["click_id"]}
    assert actions.api("POST", "/conversions", alice["key"], json=body).status_code == 201
    for revenue in ("0.01", "99999"):
        assert actions.collect(_beacon(alice["click_id"], revenue=revenue)).status_code == 202
    (row,) = _rows(app)
    assert (row.trust, str(row.revenue)) == ("verified", "49.9000")
    report = actions.report(alice["key"], alice["campaign"]["id"])
    assert (report["revenue_verified"], report["revenue_unverified"]) == ({"USD": "49.90"}, {"USD": "0.00"})


def _tables(app, campaign_id):
    """Every table and the report from the rollups (with the live rows after
    their cut), then from the rows alone."""
    from wsgi import db

    with app.test_request_context():
        campaign = db.session.get(Campaign, campaign_id)
        data = CampaignData(campaign, "Asia/Kolkata", rollups.CampaignCounts(campaign, refresh_after=None))
        assert data.counts.cut is not None
        rolled = {name: table_json(campaign_table(data, name)) for name in TABLE_NAMES}, data.report.as_dict()
        rollups.reset(campaign_id)
        data = CampaignData(campaign, "Asia/Kolkata", rollups.CampaignCounts(campaign, refresh_after=None))
        live = {name: table_json(campaign_table(data, name)) for name in TABLE_NAMES}, data.report.as_dict()
    return rolled, live


def _age_everything(app, hours=3):
    """Move every click and conversion back in time, so a refresh rolls them up."""
    from wsgi import db

    from flask_smstrack.models import Click

    with app.app_context():
        for model in (Click, Conversion):
            for row in db.session.execute(select(model)).scalars():
                row.created_at -= dt.timedelta(hours=hours)
        db.session.commit()


def test_upgrades_and_refunds_keep_the_rollups_exact(app, actions, alice):
    """A browser conversion is rolled up; the verified one that upgrades it
    moves it to another click (of another of Alice's campaigns) and
    currency, then a refund: each table reads the same from the rollups as
    from the rows."""
    other = actions.campaign(alice["key"], name="Autumn sale")
    link = actions.link(alice["key"], other["id"])
    second = click_id_of(actions.click(link["code"], ua=ANDROID, client=app.test_client()))
    actions.collect(_beacon(alice["click_id"], revenue="10.00"))
    actions.collect(_beacon(alice["click_id"], order_id="B-2", revenue="5.00"))
    _age_everything(app)
    with app.app_context():
        from wsgi import db

        rollups.catch_up()  # rolls up (reports only read)
        assert db.session.execute(select(func.sum(ConversionRollup.conversions))).scalar() > 0

    upgraded = actions.api("POST", "/conversions", alice["key"], json={**ORDER, "click_id": second, "revenue": "70.00"})
    assert (upgraded.status_code, upgraded.json["campaign_id"]) == (200, other["id"])
    refund = actions.api("POST", f"/conversions/{upgraded.json['id']}/refund", alice["key"], json={"amount": "20.00"})
    assert refund.status_code == 201, refund.json

    for campaign in (alice["campaign"], other):
        rolled, live = _tables(app, campaign["id"])
        assert rolled == live
    moved_from, moved_to = actions.report(alice["key"], alice["campaign"]["id"]), actions.report(alice["key"], other["id"])
    assert (moved_from["conversions"], moved_from["revenue"]) == (1, {"USD": "5.00"})
    assert (moved_to["conversions"], moved_to["revenue"], moved_to["refunded"]) == (1, {"USD": "70.00"}, {"USD": "20.00"})
    assert moved_to["net_revenue"] == "50.00"


# -- conversion tokens ---------------------------------------------------------


def test_a_signed_browser_conversion_is_verified(app, actions, alice):
    token = _token(actions, alice["key"])
    assert len(token) < 80
    response = actions.collect(_beacon(alice["click_id"], token=token))
    assert (response.status_code, response.json) == (202, {"status": "accepted", "attributed": True})
    (row,) = _rows(app)
    assert (row.trust, row.source, row.campaign_id) == ("verified", "snippet", alice["campaign"]["id"])
    report = actions.report(alice["key"], alice["campaign"]["id"])
    assert report["revenue_verified"] == {"USD": "49.90"}


def test_a_signed_conversion_upgrades_an_unsigned_one(app, actions, alice):
    actions.collect(_beacon(alice["click_id"], revenue="0.01"))
    token = _token(actions, alice["key"])
    assert actions.collect(_beacon(alice["click_id"], token=token)).status_code == 202
    (row,) = _rows(app)
    assert (row.trust, str(row.revenue)) == ("verified", "49.9000")


@pytest.mark.parametrize("change", [
    {"revenue": "4990"}, {"revenue": "49.91"}, {"currency": "EUR"}, {"order_id": "A-1002"}, {"event": "signup"},
])
def test_a_token_for_other_fields_is_refused(app, actions, alice, change):
    token = _token(actions, alice["key"])
    response = actions.collect(_beacon(alice["click_id"], token=token, **change))
    assert response.status_code == 400
    assert "Does not match this conversion" in response.json["errors"]["token"][0]
    assert _rows(app) == []


def test_the_same_amount_written_otherwise_matches(app, actions, alice):
    token = _token(actions, alice["key"], revenue="49.9")
    assert actions.collect(_beacon(alice["click_id"], token=token, revenue=49.90)).status_code == 202
    assert _rows(app)[0].trust == "verified"


@pytest.mark.parametrize(
    "token", ["", "x", "a.b.c", "oMQ.zzzzzzzzzzzzz.sig", "é.1.x", "o%%%.abc.def", "o\ud800.1.x", "o_w.1.x", "x.1.y"]
)
def test_a_malformed_token_is_refused(actions, alice, token):
    response = actions.collect(_beacon(alice["click_id"], token=token))
    assert response.status_code == 400
    assert "token" in response.json["errors"]


def test_an_expired_token_is_refused(app, actions, alice, monkeypatch):
    import time

    token = _token(actions, alice["key"])
    later = time.time() + app.config["SMSTRACK_CONVERSION_TOKEN_TTL"] + 5
    monkeypatch.setattr(time, "time", lambda: later)
    response = actions.collect(_beacon(alice["click_id"], token=token))
    assert response.status_code == 400
    assert response.json["errors"]["token"] == ["Expired: make a new token for each thank-you page."]


def test_a_token_from_another_key_or_app_is_refused(make_app, actions, alice):
    other = make_app(SECRET_KEY="another-secret")
    token = _token(actions, alice["key"])
    from conftest import Actions

    response = Actions(other).collect(_beacon(alice["click_id"], token=token))
    assert response.status_code == 400
    # The scope is signed too: Alice's token cannot be passed off as an admin's.
    forged = "a" + token[1:]
    assert actions.collect(_beacon(alice["click_id"], token=forged)).status_code == 400


def test_another_owners_token_cannot_verify_revenue_in_alices_campaign(app, actions, alice):
    bob = actions.api_key("bob@example.com")
    token = _token(actions, bob)
    assert actions.collect(_beacon(alice["click_id"], token=token)).status_code == 202
    (row,) = _rows(app)
    assert (row.trust, row.campaign_id, row.owner_id) == ("verified", None, "2")
    assert actions.report(alice["key"], alice["campaign"]["id"])["conversions"] == 0


def test_the_signing_key_setting_is_used(make_app):
    from conftest import Actions

    app = make_app(SMSTRACK_SIGNING_KEY="a-separate-key")
    acts = Actions(app)
    key = acts.api_key()
    token = acts.api("POST", "/conversion-tokens", key, json=ORDER).json["token"]
    with app.test_request_context():
        from flask_smstrack.tracking.tokens import check_token

        assert check_token(token, {**ORDER, "revenue": __import__("decimal").Decimal("49.90")}).owner_id == "1"
        app.config["SMSTRACK_SIGNING_KEY"] = None
        with pytest.raises(ValueError):
            check_token(token, {**ORDER, "revenue": __import__("decimal").Decimal("49.90")})


def test_a_token_needs_an_order_id(actions):
    key = actions.api_key()
    response = actions.api("POST", "/conversion-tokens", key, json={"revenue": "1", "currency": "USD"})
    assert response.status_code == 400 and "order_id" in response.json["errors"]


# -- refunds ---------------------------------------------------------------


def _verified(actions, alice, **fields):
    response = actions.api("POST", "/conversions", alice["key"], json={**ORDER, "click_id": alice["click_id"], **fields})
    assert response.status_code == 201, response.json
    return response.json["id"]


def test_partial_then_full_refund(app, actions, alice):
    conversion = _verified(actions, alice)
    path = f"/conversions/{conversion}/refund"
    part = actions.api("POST", path, alice["key"], json={"amount": "9.90", "reason": "one item back"})
    assert part.status_code == 201, part.json
    assert (part.json["amount"], part.json["currency"], part.json["conversion"]["refunded"]) == ("9.90", "USD", "9.90")
    too_much = actions.api("POST", path, alice["key"], json={"amount": "40.01"})
    assert too_much.status_code == 400
    assert too_much.json["errors"]["amount"] == ["At most 40.0000 USD is left to refund."]
    rest = actions.api("POST", path, alice["key"], json={})
    assert (rest.status_code, rest.json["amount"], rest.json["conversion"]["refunded"]) == (201, "40.00", "49.90")
    done = actions.api("POST", path, alice["key"], json={"amount": "1"})
    assert done.status_code == 409
    report = actions.report(alice["key"], alice["campaign"]["id"])
    assert (report["revenue"], report["refunded"], report["net_revenue"]) == ({"USD": "49.90"}, {"USD": "49.90"}, "0.00")
    assert (report["profit"], report["roi"]) == ("-10.00", -1.0)
    assert [str(r.amount) for r in _rows(app, Refund)] == ["9.9000", "40.0000"]


def test_a_refund_replayed_with_its_external_id_counts_once(app, actions, alice):
    conversion = _verified(actions, alice)
    body = {"amount": "10", "external_id": "re_123"}
    first = actions.api("POST", f"/conversions/{conversion}/refund", alice["key"], json=body)
    again = actions.api("POST", f"/conversions/{conversion}/refund", alice["key"], json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert (again.json["id"], again.json["duplicate"]) == (first.json["id"], True)
    assert actions.report(alice["key"], alice["campaign"]["id"])["refunded"] == {"USD": "10.00"}


def test_only_verified_conversions_with_revenue_are_refunded(app, actions, alice):
    actions.collect(_beacon(alice["click_id"]))
    (browser,) = _rows(app)
    response = actions.api("POST", f"/conversions/{browser.id}/refund", alice["key"], json={})
    assert response.status_code == 409 and "verified" in response.json["errors"]["conversion_id"][0]
    signup = _verified(actions, alice, event="signup", revenue=None, currency=None)
    assert actions.api("POST", f"/conversions/{signup}/refund", alice["key"], json={}).status_code == 409
    conversion = _verified(actions, alice, order_id="A-2")
    zero = actions.api("POST", f"/conversions/{conversion}/refund", alice["key"], json={"amount": "0"})
    assert zero.status_code == 400 and "amount" in zero.json["errors"]


def test_another_owners_conversion_cannot_be_refunded(app, actions, alice):
    conversion = _verified(actions, alice)
    bob = actions.api_key("bob@example.com")
    theirs = actions.api("POST", f"/conversions/{conversion}/refund", bob, json={})
    missing = actions.api("POST", f"/conversions/{conversion + 1000}/refund", bob, json={})
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json["errors"]["conversion_id"][0].startswith("No conversion")
    assert _rows(app, Refund) == []
    admin = actions.api_key("root@example.com", admin=True)
    assert actions.api("POST", f"/conversions/{conversion}/refund", admin, json={"amount": "1"}).status_code == 201


# -- what the reports count -------------------------------------------------


def test_verified_revenue_only(app, actions, alice):
    """49.90 verified, 200.00 from a browser, 9.90 of the verified refunded;
    cost 10.00, 1 unique click."""
    _verified(actions, alice)
    actions.collect(_beacon(alice["click_id"], order_id="FAKE-1", revenue="200.00"))
    conversion = _rows(app, Conversion, Conversion.trust == "verified")[0].id
    actions.api("POST", f"/conversions/{conversion}/refund", alice["key"], json={"amount": "9.90"})

    report = actions.report(alice["key"], alice["campaign"]["id"])
    assert (report["revenue_verified"], report["revenue_unverified"]) == ({"USD": "49.90"}, {"USD": "200.00"})
    assert (report["net_revenue"], report["profit"], report["aov"]) == ("240.00", "230.00", "120.00")

    from wsgi import db

    with app.app_context():
        db.session.execute(update(Campaign).values(verified_revenue_only=True))
        db.session.commit()
    report = actions.report(alice["key"], alice["campaign"]["id"])
    assert report["verified_revenue_only"] is True
    assert (report["net_revenue"], report["profit"], report["roi"], report["roas"]) == ("40.00", "30.00", 3.0, 4.0)
    assert (report["epc"], report["aov"], report["conversions"]) == ("40.00", "40.00", 2)
    summary = actions.api("GET", f"/campaigns/{alice['campaign']['id']}/tables/summary?format=csv", alice["key"]).text
    assert "revenue,revenue_verified,revenue_unverified,refunded,cost" in summary.splitlines()[0]
    assert ",49.90,200.00,9.90," in summary.splitlines()[1]
    listing = actions.api("GET", "/campaigns/table", alice["key"]).json["rows"][0]
    assert (listing["revenue"], listing["profit"]) == ("40.00", "30.00")


def test_the_setting_in_the_api_and_cli(app, actions, runner):
    key = actions.api_key()
    created = actions.campaign(key, verified_revenue_only=True)
    assert created["verified_revenue_only"] is True
    assert actions.campaign(key)["verified_revenue_only"] is False
    result = runner.invoke(args=["smstrack", "create-campaign", "--name", "X", "--currency", "USD",
                                 "--verified-revenue-only", "--quiet"])
    assert result.exit_code == 0, result.output
    assert _rows(app, Campaign, Campaign.id == int(result.output))[0].verified_revenue_only is True


def test_unattributed_conversions_are_listed_to_their_owner(actions, alice):
    bob = actions.api_key("bob@example.com")
    assert actions.api("POST", "/conversions", bob, json=ORDER).status_code == 201
    mine = actions.api("GET", "/conversions?attributed=false", bob).json["conversions"]
    theirs = actions.api("GET", "/conversions?attributed=false", alice["key"]).json["conversions"]
    assert ([c["order_id"] for c in mine], theirs) == (["A-1001"], [])


def test_the_setting_in_the_dashboard_form(app, actions):
    from test_dashboard import _campaign_form, csrf_token, login

    key = actions.api_key()
    client = login(app)
    token = csrf_token(client, "/smstrack/campaigns/new")
    form = {"csrf_token": token, **_campaign_form(verified_revenue_only="y")}
    assert client.post("/smstrack/campaigns/new", data=form).status_code == 302
    (created,) = actions.api("GET", "/campaigns", key).json["campaigns"]
    assert created["verified_revenue_only"] is True
    edit = f"/smstrack/campaigns/{created['id']}/edit"
    assert 'name="verified_revenue_only" value="y" checked' in client.get(edit).text
    # Unticked: the box is not posted at all.
    assert client.post(edit, data={"csrf_token": csrf_token(client, edit), **_campaign_form()}).status_code == 302
    assert actions.api("GET", f"/campaigns/{created['id']}", key).json["verified_revenue_only"] is False
