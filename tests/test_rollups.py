"""Rollups give the same numbers as the raw rows, and stay in step."""
import datetime as dt

from sqlalchemy import func, select, update

from conftest import ANDROID
from flask_smstrack.models import Campaign, Click, ClickRollup, RollupState
from flask_smstrack.reports import rollups
from flask_smstrack.reports.campaign import CampaignData
from flask_smstrack.reports.tables import campaign_table
from test_reports import SENT, TABLE_NAMES, fixture  # noqa: F401  (the hand-worked fixture)


def _all_tables(app, campaign_id, refresh_after):
    from wsgi import db

    from flask_smstrack.reports.export import table_json

    with app.test_request_context():
        campaign = db.session.get(Campaign, campaign_id)
        counts = rollups.CampaignCounts(campaign, refresh_after=refresh_after)
        data = CampaignData(campaign, "Asia/Kolkata", counts)  # a half-hour offset
        return {name: table_json(campaign_table(data, name)) for name in TABLE_NAMES}, data.counts.cut


def _catch_up(app, ids=None) -> int:
    with app.app_context():
        return rollups.catch_up(ids)


def test_rolled_up_equals_live(app, fixture):  # noqa: F811
    live, cut = _all_tables(app, fixture["id"], refresh_after=None)
    assert cut is None
    rolled, cut = _all_tables(app, fixture["id"], refresh_after=dt.timedelta(0))
    assert cut is not None and cut > SENT + dt.timedelta(days=5)
    assert rolled == live


def test_landing_after_rollup_is_counted(app, actions, fixture):  # noqa: F811
    from wsgi import db

    assert _catch_up(app) == 1  # rolls everything up
    report = actions.report(fixture["key"], fixture["id"])
    assert report["human_confirmed"] == 0
    with app.app_context():
        click_id = db.session.execute(select(Click.click_id).where(Click.kind == "human").limit(1)).scalar()
    assert actions.collect({"type": "landing", "click_id": click_id}).json["confirmed"] is True
    assert actions.collect({"type": "landing", "click_id": click_id}).json["confirmed"] is True  # twice: once
    assert actions.report(fixture["key"], fixture["id"])["human_confirmed"] == 1
    with app.app_context():
        assert db.session.execute(select(func.sum(ClickRollup.confirmed))).scalar() == 1


def test_new_clicks_after_the_cut_are_live(app, actions, fixture):  # noqa: F811
    _catch_up(app)
    before = actions.report(fixture["key"], fixture["id"])
    actions.click("spring-b", ua=ANDROID, client=app.test_client())
    after = actions.report(fixture["key"], fixture["id"])
    assert after["clicks"] == before["clicks"] + 1


def test_changing_the_send_time_rebuilds(app, actions, fixture):  # noqa: F811
    from wsgi import db

    send = {r["delay"]: r["count"] for r in actions.api(
        "GET", f"/campaigns/{fixture['id']}/tables/send_to_click", fixture["key"]).json["rows"]}
    assert send["under 5 min"] == 1
    _catch_up(app)
    with app.app_context():
        db.session.execute(update(Campaign).values(sent_at=SENT - dt.timedelta(hours=1)))
        db.session.commit()

    def delays():
        rows = actions.api("GET", f"/campaigns/{fixture['id']}/tables/send_to_click", fixture["key"]).json["rows"]
        return {r["delay"]: r["count"] for r in rows}

    def state_sent_at():
        with app.app_context():
            return db.session.get(RollupState, fixture["id"]).sent_at

    # Read before the catch-up (the rollups still hold the old delays),
    # as the catch-up will make them; the read writes nothing.
    send = delays()
    assert (send["under 5 min"], send["1–3 h"], send["3–12 h"]) == (0, 2, 1)
    assert state_sent_at() == SENT
    assert _catch_up(app) == 1
    assert state_sent_at() == SENT - dt.timedelta(hours=1)
    assert delays() == send


def test_concurrent_refresh_moves_the_cut_once(app, fixture):  # noqa: F811
    from wsgi import db

    with app.test_request_context():
        campaign = db.session.get(Campaign, fixture["id"])
        now = dt.datetime.now(dt.timezone.utc)
        assert rollups.refresh(campaign, now=now) is True
        assert rollups.refresh(campaign, now=now) is False  # nothing left to move
        total = db.session.execute(select(func.sum(ClickRollup.clicks))).scalar()
        assert total == 6  # 5 human clicks and the preview
