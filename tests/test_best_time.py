"""The best time to send: past campaigns in New York, Berlin and Tokyo
whose true best local hour is known, grouped by the recipient's local hour
of sending (a grouping by the server's clock gives another answer), the
not-enough-data answer, quiet hours, the API (JSON and CSV, the same numbers
as the dashboard panel) and ``send --at best``."""
from __future__ import annotations

import contextlib

import csv
import datetime as dt
import io
import re
import time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from conftest import Actions
from e2e.timing_seed import Send, seed_campaign
from flask_smstrack.reports.stats import wilson_interval

NY, BERLIN, TOKYO = "America/New_York", "Europe/Berlin", "Asia/Tokyo"
ZONES = (NY, BERLIN, TOKYO)
#: Mondays to Thursdays of July 2026 (daylight saving time in New York and Berlin).
DAYS = [dt.date(2026, 7, d) for d in (6, 7, 8, 9, 13, 14)]


def _owner(app) -> tuple[Actions, str, str]:
    """A user, its API key and its owner id."""
    from flask_smstrack.auth import find_user

    actions = Actions(app)
    key = actions.api_key()
    with app.app_context():
        owner_id = str(find_user("owner@example.com").id)
    return actions, key, owner_id


def _seed(app, owner_id: str, campaigns: list[tuple[dt.date, list[Send]]]) -> list[int]:
    from wsgi import db

    with app.app_context(), db.engine.begin() as conn:
        return [seed_campaign(conn, owner_id, day, sends) for day, sends in campaigns]


def _history(morning=(100, 20), afternoon=(100, 8), late=None) -> list[tuple[dt.date, list[Send]]]:
    """Three campaigns sent at 10:00 local in each zone (20% click) and three
    at 16:00 local (8%); half the recipients of each send placed by their
    timezone column, half by their number. ``late`` adds a send at 22:00."""
    campaigns = []
    for i, day in enumerate(DAYS):
        hour, (n, k) = (10, morning) if i % 2 == 0 else (16, afternoon)
        sends = []
        for zone in ZONES:
            sends += [Send(zone, hour, n // 2, k // 2, column=True), Send(zone, hour, n - n // 2, k - k // 2, column=False)]
            if late:
                sends.append(Send(zone, 22, *late))
        campaigns.append((day, sends))
    return campaigns


def _best(app, owner_id: str, **kw):
    from flask_smstrack.reports.timing import best_time

    with app.app_context():
        return best_time(owner_id, **kw)


def test_the_best_local_hour_is_found_across_time_zones(app):
    _, _, owner_id = _owner(app)
    _seed(app, owner_id, _history())
    found = _best(app, owner_id)

    assert found.best is not None and found.best.hour == 10 and found.at == dt.time(10)
    ten, four = found.hours[10], found.hours[16]
    # 3 campaigns x 3 zones x 100 recipients, 20 of each 100 clicked.
    assert (ten.messages, ten.clickers, ten.campaigns) == (900, 180, 3)
    assert (four.messages, four.clickers, four.campaigns) == (900, 72, 3)
    assert sum(c.messages for c in found.hours) == 1800 and found.campaigns == 6
    low, high = wilson_interval(180, 900)
    assert float(ten.ctr_low) == pytest.approx(low, abs=1e-6) and float(ten.ctr_high) == pytest.approx(high, abs=1e-6)
    assert found.summary() == (
        f"Best time to send: 10:00-11:00 local, CTR 20.0% ({low * 100:.1f}-{high * 100:.1f}%), 3 campaigns, 900 messages"
    )
    # On the server's clock (UTC) the same messages went out at five other
    # hours, none of them 10:00 or 16:00: only the local grouping finds 10:00.
    from wsgi import db

    from flask_smstrack.models import Recipient

    with app.app_context():
        utc_hours = {at.hour for at in db.session.execute(select(Recipient.sent_at)).scalars()}
    assert utc_hours == {1, 7, 8, 14, 20}
    # The weekday view and the clicks by local time of the click.
    assert {(c.weekday, c.hour) for c in found.weekday_hours} == {(0, 10), (1, 16), (2, 10), (3, 16)}
    assert sum(found.click_times.values()) == 180 + 72
    assert {h for _, h in found.click_times} == {10, 16}


def test_the_number_places_a_recipient_and_the_column_wins(app):
    """Los Angeles numbers with a Tokyo timezone column count in Tokyo; New
    York numbers without one count in New York."""
    _, _, owner_id = _owner(app)
    _seed(app, owner_id, [
        (day, [Send(TOKYO, 9, 100, 30, column=True), Send(NY, 9, 100, 30, column=False)]) for day in DAYS[:3]
    ])
    found = _best(app, owner_id)
    assert found.best.hour == 9 and found.hours[9].messages == 600
    assert [c.hour for c in found.hours if c.messages] == [9]


def test_purged_clicks_count_and_undelivered_messages_do_not(app):
    """Clicks a purge deleted still count through the rollup it kept; a
    message whose receipt said undelivered leaves the denominator."""
    from sqlalchemy import delete, insert, update
    from wsgi import db

    from flask_smstrack.models import Click, Recipient, RecipientRollup

    _, _, owner_id = _owner(app)
    first, *_ = _seed(app, owner_id, _history())
    before = _best(app, owner_id).hours[10]
    with app.app_context(), db.engine.begin() as conn:
        c = Click.__table__.c
        kept = conn.execute(select(c.recipient_id, c.id, c.created_at).where(c.campaign_id == first)).all()
        conn.execute(delete(Click.__table__).where(c.campaign_id == first))
        conn.execute(insert(RecipientRollup.__table__), [
            {"campaign_id": first, "recipient_id": rid, "click_pk": pk, "clicked_at": at, "converted": False}
            for rid, pk, at in kept
        ])
    after = _best(app, owner_id)
    assert (after.hours[10].messages, after.hours[10].clickers) == (before.messages, before.clickers) == (900, 180)
    assert sum(after.click_times.values()) == 180 + 72
    with app.app_context(), db.engine.begin() as conn:
        r = Recipient.__table__.c
        ids = conn.execute(
            select(r.id).where(r.campaign_id == first).order_by(r.id.desc()).limit(30)
        ).scalars().all()
        conn.execute(update(Recipient.__table__).where(r.id.in_(ids)).values(status="undelivered"))
    assert _best(app, owner_id).hours[10].messages == 870


def test_not_enough_data_recommends_nothing_and_says_why(make_app):
    app = make_app(SMSTRACK_QUIET_HOURS="21:00-08:00")
    _, _, owner_id = _owner(app)
    _seed(app, owner_id, _history()[:2])
    found = _best(app, owner_id)
    assert found.best is None and found.at is None
    assert found.reason == (
        "not enough data: 2 campaigns, 600 messages; need 3 campaigns and 200 messages sent in the same local hour"
        " outside the quiet hours 21:00-08:00"
    )
    assert found.summary().startswith("No best time to send yet: not enough data: 2 campaigns")
    # Lower thresholds (the config keys) make the same data enough.
    smaller = _best(app, owner_id, min_campaigns=1, min_messages=100)
    assert smaller.best.hour == 10


def test_an_owner_sees_only_its_own_campaigns(app):
    _, _, owner_id = _owner(app)
    _seed(app, "someone-else", _history())
    assert _best(app, owner_id).messages == 0


def test_quiet_hours_are_never_recommended(make_app):
    # 22:00 local clicks best (40%), but it is inside the TCPA window.
    app = make_app(SMSTRACK_QUIET_HOURS="21:00-08:00")
    _, _, owner_id = _owner(app)
    _seed(app, owner_id, _history(late=(100, 40)))
    found = _best(app, owner_id)
    assert found.hours[22].ctr > found.hours[10].ctr and found.hours[22].quiet
    assert found.best.hour == 10
    # Without quiet hours the same data recommends 22:00.
    open_app = make_app(SMSTRACK_QUIET_HOURS=None)
    assert _best(open_app, owner_id).best.hour == 22


def test_an_hour_that_starts_outside_quiet_hours_but_ends_inside_is_quiet(make_app):
    app = make_app(SMSTRACK_QUIET_HOURS="10:30-23:00")
    _, _, owner_id = _owner(app)
    _seed(app, owner_id, _history())
    found = _best(app, owner_id)
    assert found.hours[10].quiet and found.best is None
    assert found.reason.startswith("every local hour with enough data (10:00-11:00, 16:00-17:00) is inside the quiet")


# -- the API and CSV -------------------------------------------------------------------


def test_api_json_and_csv_and_dashboard_show_the_same_numbers(app):
    actions, key, owner_id = _owner(app)
    _seed(app, owner_id, _history())
    body = actions.api("GET", "/reports/best-time", key)
    assert body.status_code == 200, body.json
    data = body.json
    assert data["at"] == "10:00" and data["recommendation"]["hour"] == 10
    assert data["recommendation"]["messages"] == 900 and data["recommendation"]["unique_clicks"] == 180
    assert data["recommendation"]["ctr"] == 0.2 and data["recommendation"]["campaigns"] == 3
    assert len(data["hours"]) == 24 and data["min_campaigns"] == 3 and data["min_messages"] == 200

    download = actions.api("GET", "/reports/best-time?format=csv", key)
    assert download.status_code == 200 and download.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    assert len(rows) == 24
    for row, hour in zip(rows, data["hours"]):
        assert int(row["hour"]) == hour["hour"] and int(row["messages"]) == hour["messages"]
        assert int(row["unique_clicks"]) == hour["unique_clicks"] and int(row["campaigns"]) == hour["campaigns"]
        for rate in ("ctr", "ctr_low", "ctr_high"):
            assert (float(row[rate]) if row[rate] else None) == hour[rate]

    from test_dashboard import login

    browser = login(app, password="correct horse")
    page = browser.get("/smstrack/campaigns/new").get_data(as_text=True)
    best = data["recommendation"]
    expected = (
        f"Best time to send: 10:00-11:00 local, CTR {best['ctr'] * 100:.1f}% ({best['ctr_low'] * 100:.1f}-"
        f"{best['ctr_high'] * 100:.1f}%), 3 campaigns, 900 messages"
    )
    assert expected == data["summary"]
    assert expected in re.sub(r"\s+", " ", page)
    # One bar per local hour with messages, its whiskers at the interval.
    bars = re.findall(r'data-hour="(\d+)" data-ctr="([0-9.]+)" data-low="([0-9.]+)" data-high="([0-9.]+)"', page)
    assert {int(h): (float(c), float(lo), float(hi)) for h, c, lo, hi in bars} == {
        h["hour"]: (h["ctr"], h["ctr_low"], h["ctr_high"]) for h in data["hours"] if h["messages"]
    }


def test_api_thresholds_and_validation(app):
    actions, key, owner_id = _owner(app)
    _seed(app, owner_id, _history()[:2])
    enough = actions.api("GET", "/reports/best-time?min_campaigns=1&min_messages=50", key).json
    assert enough["at"] == "10:00" and enough["min_campaigns"] == 1
    nothing = actions.api("GET", "/reports/best-time", key).json
    assert nothing["at"] is None and nothing["recommendation"] is None
    assert nothing["reason"].startswith("not enough data: 2 campaigns, 600 messages; need 3 campaigns")
    for query, field in [
        ("min_campaigns=0", "min_campaigns"), ("min_campaigns=x", "min_campaigns"),
        ("min_messages=-5", "min_messages"), ("format=xml", "format"),
    ]:
        response = actions.api("GET", f"/reports/best-time?{query}", key)
        assert response.status_code == 400, query
        assert field in response.json["errors"], response.json
    assert actions.client.get("/smstrack/api/v1/reports/best-time").status_code == 401


def test_best_time_cli_prints_the_table(app):
    _, _, owner_id = _owner(app)
    _seed(app, owner_id, _history())
    result = app.test_cli_runner().invoke(args=["smstrack", "best-time", "--owner", owner_id])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Best time to send: 10:00-11:00 local, CTR 20.0%")
    assert re.search(r"10:00-11:00\s+900 messages\s+3 campaigns\s+CTR\s+20.0% .* best", result.output)
    as_csv = app.test_cli_runner().invoke(args=["smstrack", "best-time", "--owner", owner_id, "--csv"])
    assert as_csv.output.splitlines()[0].startswith("hour,weekday,local_time,messages,unique_clicks,campaigns,ctr")


# -- speed -------------------------------------------------------------------------------


def test_one_hundred_thousand_messages_are_grouped_in_the_database(app):
    """100,000 messages over 20 campaigns and 3 zones (plus 15,000 clicks):
    the report reads grouped rows, not messages, in well under 2 seconds."""
    _, _, owner_id = _owner(app)
    campaigns = []
    for i in range(20):
        day = dt.date(2026, 6, 1) + dt.timedelta(days=i)
        hour = 9 + i % 8
        campaigns.append((day, [Send(z, hour, 1667, 250, column=(j % 2 == 0)) for j, z in enumerate(ZONES)]))
    _seed(app, owner_id, campaigns)
    timings = []
    for _ in range(2):  # the first call also loads phonenumbers' data
        started = time.perf_counter()
        found = _best(app, owner_id)
        timings.append(time.perf_counter() - started)
    assert found.messages == 20 * 3 * 1667
    assert sum(found.click_times.values()) == 20 * 3 * 250
    assert (found.best.hour, found.best.messages, found.best.campaigns) == (9, 15003, 3)
    print(f"best_time over {found.messages} messages: {timings[0]:.3f} s, then {timings[1]:.3f} s")
    assert timings[1] < 2.0


# -- send --at best ------------------------------------------------------------------------


def test_send_at_best_refuses_without_a_recommendation(app):
    actions, key, owner_id = _owner(app)
    _seed(app, owner_id, _history()[:1])
    campaign = actions.campaign(key, cost=None, sent=None, message_template="Hi {link}")
    result = app.test_cli_runner().invoke(args=["smstrack", "send", str(campaign["id"]), "--at", "best", "--yes"])
    assert result.exit_code == 1
    assert "--at best: no best time to send yet: not enough data: 1 campaign, 300 messages; need 3 campaigns" in (
        result.output
    )
    assert "Pick the local time yourself with --at HH:MM, or send without --at" in result.output


ZONES_OF = {"+12125550100": NY, "+493012345678": BERLIN, "+14155550100": TOKYO}


@contextlib.contextmanager
def _sending_app(make_app, monkeypatch, rate: int):
    """An app sending through a fake Twilio on a simulated clock (2026-07-20
    20:00 UTC), with an owner, its campaign of three recipients in New York,
    Berlin and Tokyo: (app, fake Twilio, actions, API key, owner id, campaign)."""
    from e2e.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
    from test_quiet_hours import SimulatedClock

    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_REGION", "TWILIO_EDGE"):
        monkeypatch.delenv(name, raising=False)
    with FakeTwilio() as fake:
        app = make_app(
            SMSTRACK_BASE_URL="https://sms.example.com", SMSTRACK_TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            SMSTRACK_TWILIO_AUTH_TOKEN=AUTH_TOKEN, SMSTRACK_TWILIO_FROM="+15005550006",
            SMSTRACK_TWILIO_API_URL=fake.url, SMSTRACK_SEND_RATE=rate,
        )
        app.extensions["smstrack_clock"] = SimulatedClock(dt.datetime(2026, 7, 20, 20, tzinfo=dt.timezone.utc))
        actions, key, owner_id = _owner(app)
        campaign = actions.campaign(key, cost=None, sent=None, message_template="Hi, 20% off today: {link}")
        actions.link(key, campaign["id"])
        csv_text = "phone,timezone\n+12125550100,\n+493012345678,\n+14155550100,Asia/Tokyo\n"
        imported = actions.api("POST", f"/campaigns/{campaign['id']}/recipients", key, data=csv_text,
                               content_type="text/csv")
        assert imported.status_code == 200, imported.json
        yield app, fake, actions, key, owner_id, campaign


def _sent_at_ten_local(app, campaign_id: int) -> None:
    """Each recipient's message went out at 10:00 on their own clock."""
    from wsgi import db

    from flask_smstrack.models import Recipient

    with app.app_context():
        sent = db.session.execute(
            select(Recipient.phone, Recipient.sent_at).where(Recipient.campaign_id == campaign_id)
        ).all()
    assert len(sent) == 3
    for phone, at in sent:
        local = at.astimezone(ZoneInfo(ZONES_OF[phone]))
        assert (local.hour, local.minute) == (10, 0), (phone, local)


def test_send_at_best_sends_at_the_recommended_local_hour(make_app, monkeypatch):
    with _sending_app(make_app, monkeypatch, rate=2) as (app, fake, actions, key, owner_id, campaign):
        _seed(app, owner_id, _history())
        result = app.test_cli_runner().invoke(args=["smstrack", "send", str(campaign["id"]), "--at", "best", "--yes"])
        assert result.exit_code == 0, result.output
        assert "Best time to send: 10:00-11:00 local, CTR 20.0%" in result.output
        assert "at 10:00 in each recipient's time zone" in result.output
        assert len(fake.creates) == 3
    _sent_at_ten_local(app, campaign["id"])


def test_the_send_page_sends_at_the_best_time(make_app, monkeypatch, tmp_path):
    """The dashboard's Send offers the best time, with its evidence, and the
    send (on a thread of the web process) texts each recipient then, on
    their own clock; a time of day is taken as written, and a wrong one or a
    best time that is not known yet is a 400 saying what to do."""
    from test_dashboard import csrf_token, login
    from test_jobs import _until_done

    monkeypatch.setenv("SMSTRACK_INSTANCE_PATH", str(tmp_path / "instance"))
    with _sending_app(make_app, monkeypatch, rate=1000) as (app, fake, actions, key, owner_id, campaign):
        client = login(app)
        page = f"/smstrack/campaigns/{campaign['id']}/send"

        before = client.get(page).text
        assert 'value="best" disabled' in before and "not enough data" in before
        token = csrf_token(client, page)
        refused = client.post(page, data={"csrf_token": token, "when": "best"})
        assert refused.status_code == 400 and "when: there is no best time to send yet (not enough data" in (
            refused.text)
        wrong = client.post(page, data={"csrf_token": token, "when": "at", "at": "25:00"})
        assert wrong.status_code == 400 and "at: &#39;25:00&#39; is not a time of day as HH:MM" in wrong.text
        assert client.post(page, data={"csrf_token": token, "when": "soon"}).status_code == 400
        assert not fake.creates

        _seed(app, owner_id, _history())
        offered = client.get(page).text
        assert "At the best time, 10:00" in offered and "Best time to send: 10:00-11:00 local, CTR 20.0%" in offered
        assert client.post(page, data={"csrf_token": token, "when": "best"}).status_code == 303
        status = _until_done(client, campaign["id"])
        assert status["status"] == "finished" and status["done"] == 3, status
        assert len(fake.creates) == 3
    _sent_at_ten_local(app, campaign["id"])
