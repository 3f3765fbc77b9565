"""Report tables on a small fixture whose numbers are worked out by hand."""
import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import update

from conftest import ANDROID, DESKTOP, IMESSAGE_PREVIEW, IPHONE, click_id_of
from flask_smstrack.models import Campaign, Click, Conversion

UTC = dt.timezone.utc
SENT = dt.datetime(2026, 3, 3, 9, 0, tzinfo=UTC)  # a Tuesday, 09:00 UTC

#: The breakdowns by dimension, in the order the campaign page shows them.
BREAKDOWN_NAMES = ["links", "variants", "devices", "os", "browsers", "countries", "referrers"]
#: Every table of a campaign, sorted as the API lists them.
TABLE_NAMES = sorted([
    "summary", "timeseries", "heatmap_clicks", "heatmap_conversions", "send_to_click", "click_to_conversion",
    "variant_test", *BREAKDOWN_NAMES,
])


@pytest.fixture
def fixture(app, actions):
    """100 sent for 10.00. Link A: 3 people (iPhone, Android, desktop), the
    iPhone twice; link B: 1 Android person; one iMessage preview. Clicks at
    +3 min, +10 min, +2 h, +50 h (the repeat), link B at +26 h. Two
    conversions: 30.00 USD (iPhone, 20 min after its click) and 12.50 USD
    (link B's Android, 3 days after its click)."""
    from wsgi import db

    key = actions.api_key()
    campaign = actions.campaign(key, cost="10.00", sent=100)
    a = actions.link(key, campaign["id"], code="spring-a")
    b = actions.link(key, campaign["id"], code="spring-b")
    iphone = actions.click("spring-a", ua=IPHONE)
    android = actions.click("spring-a", ua=ANDROID, client=app.test_client())
    desktop = actions.click("spring-a", ua=DESKTOP, client=app.test_client(), ip="8.8.8.8")
    repeat = actions.click("spring-a", ua=IPHONE)
    other = actions.click("spring-b", ua=ANDROID, client=app.test_client())
    preview = actions.click("spring-a", ua=IMESSAGE_PREVIEW, client=app.test_client())
    times = {
        click_id_of(iphone): SENT + dt.timedelta(minutes=3),
        click_id_of(android): SENT + dt.timedelta(minutes=10),
        click_id_of(desktop): SENT + dt.timedelta(hours=2),
        click_id_of(repeat): SENT + dt.timedelta(hours=50),
        click_id_of(other): SENT + dt.timedelta(hours=26),
        click_id_of(preview): SENT + dt.timedelta(seconds=20),
    }
    for body in (
        {"click_id": click_id_of(iphone), "revenue": "30.00", "currency": "USD", "order_id": "o1"},
        {"click_id": click_id_of(other), "revenue": "12.50", "currency": "USD", "order_id": "o2"},
    ):
        assert actions.api("POST", "/conversions", key, json={"event": "purchase", **body}).status_code == 201
    with app.app_context():
        db.session.execute(update(Campaign).values(sent_at=SENT))
        for click_id, moment in times.items():
            db.session.execute(update(Click).where(Click.click_id == click_id).values(created_at=moment))
        db.session.execute(
            update(Conversion).where(Conversion.order_id == "o1").values(created_at=SENT + dt.timedelta(minutes=23))
        )
        db.session.execute(
            update(Conversion).where(Conversion.order_id == "o2").values(created_at=SENT + dt.timedelta(hours=26 + 72))
        )
        db.session.commit()
    return {"key": key, "id": campaign["id"], "a": a, "b": b}


def test_every_table_is_listed(actions, fixture):
    """Tests that go through every table use these names: a table that
    disappears fails here rather than being skipped there."""
    from flask_smstrack.reports.tables import BREAKDOWNS, TABLES

    assert list(BREAKDOWNS) == BREAKDOWN_NAMES
    assert sorted(TABLES) == TABLE_NAMES
    response = actions.api("GET", f"/campaigns/{fixture['id']}/tables", fixture["key"])
    assert response.json == {"tables": TABLE_NAMES}


def _table(actions, fixture, name, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = actions.api("GET", f"/campaigns/{fixture['id']}/tables/{name}?{query}", fixture["key"])
    assert response.status_code == 200, response.json
    return response.json


def test_summary(actions, fixture):
    (row,) = _table(actions, fixture, "summary")["rows"]
    assert row == {
        "sent": 100, "delivered": None, "reached": 100, "clicks": 5, "unique_clicks": 4, "previews": 1, "bots": 0,
        "human_confirmed": 0, "ctr": 0.04, "conversions": 2, "unattributed_conversions": 0,
        "conversion_rate": 0.5, "revenue": "42.50", "cost": "10.00", "profit": "32.50", "roi": 3.25,
        "roas": 4.25, "epc": "10.625", "aov": "21.25", "cost_per_conversion": "5.00",
        "revenue_verified": "42.50", "revenue_unverified": "0.00", "refunded": "0.00",
        "opt_outs": 0, "opt_out_rate": None,
    }


def test_links_breakdown(actions, fixture):
    rows = _table(actions, fixture, "links")["rows"]
    assert [(r["value"].split(" ")[0], r["clicks"], r["unique_clicks"], r["conversions"], r["revenue"], r["share"], r["conversion_rate"]) for r in rows] == [
        ("/spring-a", 4, 3, 1, "30.00", 0.8, 0.333333),
        ("/spring-b", 1, 1, 1, "12.50", 0.2, 1.0),
    ]


def test_devices_breakdown(actions, fixture):
    rows = _table(actions, fixture, "devices")["rows"]
    assert [(r["value"], r["clicks"], r["unique_clicks"], r["conversions"]) for r in rows] == [
        ("mobile", 4, 3, 2),
        ("desktop", 1, 1, 0),
    ]


def test_countries_breakdown(actions, fixture):
    rows = _table(actions, fixture, "countries")["rows"]
    assert [(r["value"], r["clicks"]) for r in rows] == [("GB", 4), ("US", 1)]


def test_timeseries_hourly_then_daily(actions, fixture):
    rows = _table(actions, fixture, "timeseries")["rows"]
    hourly = [r for r in rows if r["hours"] == 1]
    assert len(hourly) == 48
    assert hourly[0]["start"] == "2026-03-03T09:00:00+00:00"
    assert (hourly[0]["clicks"], hourly[0]["conversions"], hourly[0]["revenue"]) == (2, 1, "30.00")
    assert hourly[2]["clicks"] == 1  # the desktop, +2 h
    assert hourly[26]["clicks"] == 1  # link B, +26 h
    daily = [r for r in rows if r["hours"] != 1]
    # From +48 h (Thursday 09:00) to midnight, then whole days to the last conversion.
    assert [(r["start"], r["hours"], r["clicks"], r["conversions"]) for r in daily] == [
        ("2026-03-05T09:00:00+00:00", 15, 1, 0),
        ("2026-03-06T00:00:00+00:00", 24, 0, 0),
        ("2026-03-07T00:00:00+00:00", 24, 0, 1),
    ]
    assert sum(r["clicks"] for r in rows) == 5


def test_timeseries_days_follow_the_timezone(actions, fixture):
    rows = _table(actions, fixture, "timeseries", tz="America/New_York")["rows"]
    daily = [r for r in rows if r["hours"] != 1]
    assert daily[0]["start"] == "2026-03-05T04:00:00-05:00"
    assert daily[1]["start"] == "2026-03-06T00:00:00-05:00"


def test_heatmap_in_a_timezone(actions, fixture):
    utc = {r["weekday"]: r for r in _table(actions, fixture, "heatmap_clicks")["rows"]}
    assert (utc["Tue"]["h09"], utc["Tue"]["h11"], utc["Wed"]["h11"], utc["Thu"]["h11"]) == (2, 1, 1, 1)
    tokyo = {r["weekday"]: r for r in _table(actions, fixture, "heatmap_clicks", tz="Asia/Tokyo")["rows"]}
    assert (tokyo["Tue"]["h18"], tokyo["Tue"]["h20"], tokyo["Wed"]["h20"]) == (2, 1, 1)
    conversions = {r["weekday"]: r for r in _table(actions, fixture, "heatmap_conversions")["rows"]}
    assert (conversions["Tue"]["h09"], conversions["Sat"]["h11"]) == (1, 1)


def test_delay_distributions(actions, fixture):
    send = {r["delay"]: r["count"] for r in _table(actions, fixture, "send_to_click")["rows"]}
    assert (send["under 5 min"], send["5–15 min"], send["1–3 h"], send["1–2 days"], send["2–7 days"]) == (1, 1, 1, 1, 1)
    conv = {r["delay"]: r["count"] for r in _table(actions, fixture, "click_to_conversion")["rows"]}
    assert (conv["15–60 min"], conv["2–7 days"]) == (1, 1)


def test_csv_matches_json(actions, fixture):
    response = actions.api("GET", f"/campaigns/{fixture['id']}/tables/links?format=csv", fixture["key"])
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    lines = response.data.decode().splitlines()
    assert lines[0] == "value,clicks,unique_clicks,conversions,conversion_rate,revenue,share"
    assert lines[1].endswith(",4,3,1,0.333333,30.00,0.8")


def test_unknown_table_and_timezone(actions, fixture):
    assert actions.api("GET", f"/campaigns/{fixture['id']}/tables/nope", fixture["key"]).status_code == 404
    bad = actions.api("GET", f"/campaigns/{fixture['id']}/tables/timeseries?tz=Mars/Olympus", fixture["key"])
    assert bad.status_code == 400 and "tz" in bad.json["errors"]
    other = actions.api_key("other@example.com")
    assert actions.api("GET", f"/campaigns/{fixture['id']}/tables/links", other).status_code == 404


def test_csv_neutralises_formulas():
    from flask_smstrack.reports.export import table_csv
    from flask_smstrack.reports.tables import Column, Table

    table = Table("t", "T", [Column("value", "V", "text"), Column("n", "N")], [
        {"value": "=HYPERLINK(\"http://x\")", "n": 1}, {"value": "+1", "n": 2}, {"value": "-2", "n": 3},
        {"value": "@SUM(A1)", "n": 4}, {"value": "plain", "n": 5},
    ])
    lines = table_csv(table).splitlines()
    assert lines[1:] == ['"\'=HYPERLINK(""http://x"")",1', "'+1,2", "'-2,3", "'@SUM(A1),4", "plain,5"]


def test_aov_divides_by_orders_in_the_campaign_currency(app, actions):
    """Two purchases in USD (30.00 and 20.00), two sign-ups without revenue
    (one of them naming USD), and an order in EUR. AOV is 50.00 USD over
    the 2 USD orders, in the API, the summary table, its CSV and on the
    campaign page; the EUR order stays apart. Numbers from the rollups
    (everything is older than the cut) and from the raw rows agree."""
    from wsgi import db

    from flask_smstrack.reports.campaign import CampaignData
    from flask_smstrack.reports.rollups import CampaignCounts
    from test_dashboard import login, tiles

    key = actions.api_key()
    campaign = actions.campaign(key, cost="10.00", sent=100, sent_at=SENT.isoformat())
    actions.link(key, campaign["id"], code="aov")
    click_id = click_id_of(actions.click("aov"))
    for body in (
        {"event": "purchase", "revenue": "30.00", "currency": "USD", "order_id": "u1"},
        {"event": "purchase", "revenue": "20.00", "currency": "USD", "order_id": "u2"},
        {"event": "signup"},
        {"event": "signup", "currency": "USD", "order_id": "s2"},
        {"event": "purchase", "revenue": "5.50", "currency": "EUR", "order_id": "e1"},
    ):
        response = actions.api("POST", "/conversions", key, json={"click_id": click_id, **body})
        assert response.status_code == 201, response.json
    with app.app_context():
        db.session.execute(update(Click).values(created_at=SENT + dt.timedelta(minutes=3)))
        db.session.execute(update(Conversion).values(created_at=SENT + dt.timedelta(minutes=20)))
        db.session.commit()

    with app.test_request_context():
        live = db.session.get(Campaign, campaign["id"])
        report = CampaignData(live, counts=CampaignCounts(live, refresh_after=None)).report
        assert (report.conversions, report.orders, report.aov) == (5, 2, Decimal("25.0000"))

    report = actions.report(key, campaign["id"])  # rolls everything up
    assert report["revenue"] == {"EUR": "5.50", "USD": "50.00"}
    assert (report["conversions"], report["aov"], report["epc"], report["cost_per_conversion"]) == (
        5, "25.00", "50.00", "2.00")
    (row,) = _table(actions, {"id": campaign["id"], "key": key}, "summary")["rows"]
    assert (row["conversions"], row["revenue"], row["aov"]) == (5, "50.00", "25.00")
    csv_lines = actions.api("GET", f"/campaigns/{campaign['id']}/tables/summary?format=csv", key).data.decode().splitlines()
    assert dict(zip(csv_lines[0].split(","), csv_lines[1].split(",")))["aov"] == "25.00"
    client = login(app)
    assert tiles(client.get(f"/smstrack/campaigns/{campaign['id']}").text)["AOV"] == "25.00 USD"
    dashboard_csv = client.get(f"/smstrack/campaigns/{campaign['id']}/tables/summary.csv").data.decode().splitlines()
    assert dict(zip(dashboard_csv[0].split(","), dashboard_csv[1].split(",")))["aov"] == "25.00"
