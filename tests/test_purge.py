"""``flask smstrack purge``: raw clicks and conversions before the cutoff are
deleted, and every report, table, CSV, list and audience stays the same."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from conftest import ANDROID, IPHONE
from flask_smstrack.config import Keys
from flask_smstrack.models import Campaign, Click, Conversion, PurgedConversion, RecipientRollup, Refund, RollupState
from test_dashboard import login

UTC = dt.timezone.utc
SEGMENTS = ("all", "clicked", "clicked_not_converted", "not_clicked", "converted")
_CSRF_VALUE = re.compile(r'(name="csrf_token"[^>]*value=")[^"]*|(<meta name="csrf-token" content=")[^"]*')


def _ids(model, *where) -> set[int]:
    from wsgi import db

    return set(db.session.execute(select(model.id).where(*where)).scalars())


@pytest.fixture
def world(app, actions):
    """Two campaigns of the demos (a Spring sale: kinds, devices, countries,
    referrers, returning visitors, confirmed clicks; an A/B test sent to
    imported recipients: variants, per-recipient links, forwards, repeats),
    plus verified conversions in two currencies, refunds, an unverified
    one, and unattributed conversions, spread over the demos' week."""
    from wsgi import db

    from flask_smstrack.demo.ab_test import create_demo_sms_campaign
    from flask_smstrack.demo.spring_sale import create_demo_campaign

    actions.user("owner@example.com", admin=True)
    key = actions.api_key("owner@example.com")
    with app.test_request_context():
        from flask_smstrack.auth import find_user

        owner_id = str(find_user("owner@example.com").id)
        spring = create_demo_campaign(clicks=700, seed=3, owner_id=owner_id).id
        ab = create_demo_sms_campaign(recipients=240, seed=4, owner_id=owner_id).id
        sent_at = db.session.get(Campaign, spring).sent_at
        humans = {
            cid: list(db.session.execute(
                select(Click.click_id, Click.created_at).where(Click.campaign_id == cid, Click.kind == "human")
                .order_by(Click.id)
            ))
            for cid in (spring, ab)
        }
    cutoff = sent_at + dt.timedelta(days=2, hours=3)
    extra = []
    # Verified conversions named by clicks before and after the cutoff, two
    # currencies, with and without order ids; some refunded.
    for i, (cid, pick) in enumerate([(spring, 0), (spring, 5), (spring, 40), (ab, 1), (ab, 7), (spring, -3)]):
        click_id, _ = humans[cid][pick]
        body = {"click_id": click_id, "event": "purchase", "revenue": f"{10 + i}.50",
                "currency": "EUR" if i % 2 else "USD"}
        if i != 2:
            body["order_id"] = f"X-{i}"
        response = actions.api("POST", "/conversions", key, json=body)
        assert response.status_code == 201, response.json
        extra.append(response.json["id"])
    for conversion_id, amount in ((extra[0], "4.00"), (extra[1], None), (extra[3], "1.25")):
        body = {} if amount is None else {"amount": amount}
        assert actions.api("POST", f"/conversions/{conversion_id}/refund", key, json=body).status_code == 201
    # An unverified one from the snippet, with an order id.
    assert actions.collect({"type": "conversion", "click_id": humans[ab][3][0], "event": "purchase",
                            "revenue": "7.00", "currency": "USD", "order_id": "U-1"}).status_code == 202
    # Conversions naming a click too late (unattributed), one later purged.
    app.config[Keys.ATTRIBUTION_WINDOW_DAYS] = 1
    for n, pick in enumerate((2, 9)):
        response = actions.api("POST", "/conversions", key, json={
            "click_id": humans[spring][pick][0], "event": "signup", "order_id": f"L-{n}"})
        assert response.status_code == 201 and response.json["attributed"] is False
        extra.append(response.json["id"])
    with app.app_context():
        # Each conversion happened some minutes after its click (the last
        # spring one, after the cutoff: its click is kept); the late ones
        # around the cutoff.
        times = {}
        for conversion_id, click_time in db.session.execute(
            select(Conversion.id, Click.created_at).join(Click, Conversion.click_pk == Click.id)
            .where(Conversion.id.in_(extra) | (Conversion.order_id == "U-1"))
        ):
            times[conversion_id] = click_time + dt.timedelta(minutes=37)
        times[extra[5]] = cutoff + dt.timedelta(hours=5)
        times[extra[6]] = cutoff - dt.timedelta(hours=1)
        times[extra[7]] = cutoff + dt.timedelta(hours=1)
        for conversion_id, moment in times.items():
            db.session.execute(update(Conversion).where(Conversion.id == conversion_id).values(created_at=moment))
        db.session.execute(update(RollupState).values(rolled_until=dt.datetime(1970, 1, 1, tzinfo=UTC)))
        db.session.commit()
        from flask_smstrack.reports.rollups import reset

        for cid in (spring, ab):
            reset(cid)
    return {"key": key, "spring": spring, "ab": ab, "cutoff": cutoff, "extra": extra, "sent_at": sent_at}


def _snapshot(app, actions, world) -> dict:
    """Everything the reports show of both campaigns."""
    key, snap = world["key"], {}
    for cid in (world["spring"], world["ab"]):
        snap[cid, "report"] = actions.report(key, cid)
        names = actions.api("GET", f"/campaigns/{cid}/tables", key).json["tables"]
        snap[cid, "tables"] = names
        for name in names:
            for tz in ("UTC", "Asia/Kolkata"):
                response = actions.api("GET", f"/campaigns/{cid}/tables/{name}?tz={tz}", key)
                assert response.status_code == 200, (name, response.json)
                snap[cid, name, tz] = response.json
                snap[cid, name, tz, "csv"] = actions.api(
                    "GET", f"/campaigns/{cid}/tables/{name}?tz={tz}&format=csv", key).text
        for segment in SEGMENTS:
            snap[cid, segment] = actions.api("GET", f"/campaigns/{cid}/recipients?segment={segment}&limit=1000",
                                             key).json
            snap[cid, segment, "csv"] = actions.api(
                "GET", f"/campaigns/{cid}/recipients?segment={segment}&format=csv", key).text
        snap[cid, "mobile"] = actions.api(
            "GET", f"/campaigns/{cid}/recipients?segment=clicked&device=mobile&limit=1000", key).json
    snap["list"] = actions.api("GET", "/campaigns/table?per_page=10", key).json
    snap["list.csv"] = actions.api("GET", "/campaigns/table?format=csv", key).text
    dashboard = login(app)
    for cid in (world["spring"], world["ab"]):
        page = dashboard.get(f"/smstrack/campaigns/{cid}")
        assert page.status_code == 200
        snap[cid, "page"] = _CSRF_VALUE.sub(lambda m: m.group(1) or m.group(2), page.text)
        snap[cid, "csv"] = dashboard.get(f"/smstrack/campaigns/{cid}/tables/timeseries.csv").text
    snap["dashboard"] = _CSRF_VALUE.sub(lambda m: m.group(1) or m.group(2), dashboard.get("/smstrack/").text)
    snap["summary.csv"] = dashboard.get("/smstrack/campaigns.csv").text
    return snap


def _doomed(app, world) -> tuple[set[int], set[int], set[int], set[int]]:
    """Ids of the clicks and conversions the purge must delete, and of
    those it must keep (worked out here, from the rules)."""
    from wsgi import db

    cutoff = world["cutoff"]
    window = dt.datetime.now(UTC) - dt.timedelta(days=app.config[Keys.ATTRIBUTION_WINDOW_DAYS])
    with app.app_context():
        conversions = _ids(Conversion, Conversion.created_at < cutoff)
        kept_conversions = _ids(Conversion) - conversions
        referenced = set(db.session.execute(
            select(Conversion.click_pk).where(Conversion.created_at >= cutoff, Conversion.click_pk.is_not(None))
        ).scalars())
        clicks = _ids(Click, Click.created_at < min(cutoff, window)) - referenced
        kept_clicks = _ids(Click) - clicks
    return clicks, kept_clicks, conversions, kept_conversions


def test_purge_keeps_every_report_identical(app, runner, actions, world):
    from wsgi import db

    before = _snapshot(app, actions, world)
    assert before[world["spring"], "report"]["unattributed_conversions"] >= 2
    spring, ab = before[world["spring"], "report"], before[world["ab"], "report"]
    assert ab["forwards"] > 0 and spring["human_confirmed"] > 0 and spring["previews"] > 0 and spring["bots"] > 0
    assert set(spring["revenue"]) == {"EUR", "USD"} and Decimal(spring["refunded"]["EUR"]) > 0
    assert len(before[world["ab"], "variants", "UTC"]["rows"]) == 2
    assert len(before[world["ab"], "clicked"]["recipients"]) > 20
    clicks, kept_clicks, conversions, kept_conversions = _doomed(app, world)
    assert len(clicks) > 300 and len(conversions) > 10 and kept_clicks and kept_conversions
    cutoff = world["cutoff"].isoformat()

    dry = runner.invoke(args=["smstrack", "purge", "--before", cutoff, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Nothing was deleted." in dry.output
    with app.app_context():
        assert _ids(Click) == clicks | kept_clicks and _ids(Conversion) == conversions | kept_conversions
    total = re.search(r"Total\s+(\d+)\s+(\d+)\s+(\d+)", dry.output).groups()
    assert (int(total[0]), int(total[1])) == (len(clicks), len(conversions))

    result = runner.invoke(args=["smstrack", "purge", "--before", cutoff, "--batch-size", "97"])  # many batches
    assert result.exit_code == 0, result.output
    assert re.search(r"Total\s+(\d+)\s+(\d+)\s+(\d+)", result.output).groups() == total
    for cid in (world["spring"], world["ab"]):
        assert re.search(rf"^\s+{cid}\s", result.output, re.M)
    with app.app_context():
        assert _ids(Click) == kept_clicks
        assert _ids(Conversion) == kept_conversions
        assert not db.session.execute(select(Refund.id).where(Refund.conversion_id.in_(conversions))).first()
        marks = dict(db.session.execute(select(RollupState.campaign_id, RollupState.purged_until)).all())
        assert marks[world["spring"]] == world["cutoff"] and marks[world["ab"]] == world["cutoff"]
        assert db.session.execute(select(func.count()).select_from(RecipientRollup)).scalar() > 0
        kept_orders = set(db.session.execute(select(PurgedConversion.order_id)).scalars())
    assert {"X-0", "X-1", "X-3", "X-4", "U-1", "L-0"} <= kept_orders

    after = _snapshot(app, actions, world)
    assert after.keys() == before.keys()
    for name in before:
        assert after[name] == before[name], name

    # Again: nothing left to delete, nothing changes.
    again = runner.invoke(args=["smstrack", "purge", "--before", cutoff])
    assert re.search(r"Total\s+0\s+0\s+", again.output), again.output
    assert _snapshot(app, actions, world) == before


def test_replays_refunds_and_late_clicks_after_a_purge(app, runner, actions, world):
    from wsgi import db

    from flask_smstrack.tracking.clicks import click_row
    from flask_smstrack.tracking.classify import Agent
    from flask_smstrack.tracking.spool import spool_click
    from flask_smstrack.state import get_state

    key, spring = world["key"], world["spring"]
    assert runner.invoke(args=["smstrack", "purge", "--before", world["cutoff"].isoformat()]).exit_code == 0
    report = actions.report(key, spring)
    purged_id = world["extra"][0]
    app.config[Keys.ATTRIBUTION_WINDOW_DAYS] = 30  # the replays name clicks still within it

    # A replay of a purged order id is a duplicate and changes nothing.
    with app.app_context():
        click_id = db.session.execute(select(Click.click_id).where(Click.campaign_id == spring)).scalars().first()
    replay = actions.api("POST", "/conversions", key, json={
        "click_id": click_id, "event": "purchase", "revenue": "10.50", "currency": "USD", "order_id": "X-0"})
    assert replay.status_code == 200, replay.json
    assert replay.json["duplicate"] is True and replay.json["purged"] is True and replay.json["id"] == purged_id
    assert replay.json["attributed"] is True and Decimal(replay.json["refunded"]) == Decimal(4)
    # A browser's replay of the purged unverified one: not a new conversion.
    assert actions.collect({"type": "conversion", "click_id": click_id, "event": "purchase",
                            "revenue": "7.00", "currency": "USD", "order_id": "U-1"}).status_code == 202
    # ... nor is its verified version an upgrade: its counts stay as they were.
    upgrade = actions.api("POST", "/conversions", key, json={
        "click_id": click_id, "event": "purchase", "revenue": "7.00", "currency": "USD", "order_id": "U-1"})
    assert upgrade.status_code == 200 and upgrade.json["duplicate"] is True
    assert actions.report(key, spring) == report

    # A refund of a purged conversion: a clear 409, not a 500.
    refund = actions.api("POST", f"/conversions/{purged_id}/refund", key, json={"amount": "1.00"})
    assert refund.status_code == 409, refund.json
    assert "purged" in str(refund.json)
    assert actions.api("POST", "/conversions/999999/refund", key, json={}).status_code == 404

    # A click spooled before the purge's time, written late: counted once.
    with app.test_request_context():
        link = db.session.execute(select(Click.link_id).where(Click.campaign_id == spring)).scalars().first()
        row = click_row("L" * 26, world["sent_at"] + dt.timedelta(hours=1), link, spring, "human",
                        Agent("human", "mobile", "iOS", "Mobile Safari"), is_first=True, country="FR")
        spool_click(get_state().spool_dir, row)
    result = runner.invoke(args=["smstrack", "replay-spool"])
    assert result.exit_code == 0 and "Wrote 1 clicks" in result.output, result.output
    later = actions.report(key, spring)
    assert later["clicks"] == report["clicks"] + 1
    assert later["unique_clicks"] == report["unique_clicks"] + 1
    assert {k: v for k, v in later.items() if k not in ("clicks", "unique_clicks", "ctr", "epc", "conversion_rate")} \
        == {k: v for k, v in report.items() if k not in ("clicks", "unique_clicks", "ctr", "epc", "conversion_rate")}
    countries = {r["value"]: r["clicks"] for r in actions.api(
        "GET", f"/campaigns/{spring}/tables/countries", key).json["rows"]}

    # A new send time rebuilds what is after the purge only.
    with app.app_context():
        campaign = db.session.get(Campaign, spring)
        campaign.sent_at = campaign.sent_at - dt.timedelta(minutes=30)
        db.session.commit()
    moved = actions.report(key, spring)
    assert moved == later
    assert {r["value"]: r["clicks"] for r in actions.api(
        "GET", f"/campaigns/{spring}/tables/countries", key).json["rows"]} == countries


def test_purge_needs_a_time(app, runner):
    result = runner.invoke(args=["smstrack", "purge"])
    assert result.exit_code == 2
    assert "SMSTRACK_RETENTION_DAYS" in result.output and "--before" in result.output
    for bad in ("yesterday", "2999-01-01"):
        result = runner.invoke(args=["smstrack", "purge", "--before", bad])
        assert result.exit_code == 2 and "--before" in result.output, result.output
    app.config[Keys.TIMEZONE] = "Europe/Paris"
    result = runner.invoke(args=["smstrack", "purge", "--before", "2026-01-15", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "before 2026-01-14 23:00 UTC" in result.output and "Nothing was deleted." in result.output


def test_retention_days_sets_the_cutoff(make_app, actions):
    app = make_app(SMSTRACK_RETENTION_DAYS=3, SMSTRACK_ATTRIBUTION_WINDOW_DAYS=1)
    from wsgi import db

    key = type(actions)(app).api_key()
    client = type(actions)(app)
    campaign = client.campaign(key)
    client.link(key, campaign["id"], code="old-one")
    for ua in (IPHONE, ANDROID):
        client.click("old-one", ua=ua)
    with app.app_context():
        first, second = sorted(_ids(Click))
        db.session.execute(update(Click).where(Click.id == first).values(
            created_at=dt.datetime.now(UTC) - dt.timedelta(days=4)))
        db.session.commit()
    before = client.report(key, campaign["id"])
    result = app.test_cli_runner().invoke(args=["smstrack", "purge"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert _ids(Click) == {second}
    assert client.report(key, campaign["id"]) == before
    assert Decimal(before["cost"]) == Decimal("10.00")
