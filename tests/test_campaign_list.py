"""The campaign list at scale: a page costs the same statements for 3
campaigns or 60, pages and sorts happen in the database, and every number
in the list is the campaign's own report's."""
from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Decimal

import pytest
from sqlalchemy import event, select

from flask_smstrack.models import Campaign, Click, Conversion, Link, Recipient, Variant
from flask_smstrack.reports.listing import SORT_KEYS, ListFilter, campaign_list, campaign_list_all
from test_dashboard import list_names, login

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
_ids = itertools.count(1)


def _click(campaign: Campaign, link: Link, at: dt.datetime, kind: str = "human", first: bool = True, **fields) -> Click:
    return Click(
        click_id=f"k{next(_ids):08d}", created_at=at, link_id=link.id, campaign_id=campaign.id, kind=kind,
        is_first=first and kind == "human", human_confirmed=fields.pop("confirmed", False), **fields,
    )


def _campaign(session, owner: str, name: str, *, sent_at=NOW - dt.timedelta(days=3), clicks=(), conversions=(),
              recipients=(), variants=0, **fields) -> Campaign:
    """A campaign with its link, ``clicks`` as ``(kind, first, minutes after
    the send)``, ``conversions`` as ``(revenue, currency)`` on its first
    clicks, and ``recipients`` as ``(status, has message id, segments)``."""
    campaign = Campaign(owner_id=owner, name=name, currency=fields.pop("currency", "USD"), sent_at=sent_at, **fields)
    session.add(campaign)
    session.flush()
    link = Link(campaign_id=campaign.id, code=f"l{next(_ids)}", destination_url="https://shop.example.com/")
    made = [Variant(campaign_id=campaign.id, name=chr(65 + i), message_template="Hi {link}") for i in range(variants)]
    session.add_all([link, *made])
    session.flush()
    start = sent_at or NOW - dt.timedelta(days=3)
    rows = []
    for i, (kind, first, minutes) in enumerate(clicks):
        variant = made[i % len(made)].id if made else None
        rows.append(_click(campaign, link, start + dt.timedelta(minutes=minutes), kind, first, variant_id=variant,
                           device_type=("mobile", "desktop", None)[i % 3], confirmed=i % 2 == 0))
    session.add_all(rows)
    session.flush()
    humans = [c for c in rows if c.kind == "human"]
    for i, (revenue, currency) in enumerate(conversions):
        click = humans[i % len(humans)]
        session.add(Conversion(
            created_at=click.created_at + dt.timedelta(minutes=20), click_pk=click.id, reported_click_id=click.click_id,
            campaign_id=campaign.id, link_id=link.id, variant_id=click.variant_id, event="purchase",
            revenue=None if revenue is None else Decimal(revenue), currency=currency, order_id=f"o{next(_ids)}",
            source="server", trust="verified",
        ))
    for i, (status, sid, segments) in enumerate(recipients):
        session.add(Recipient(campaign_id=campaign.id, phone=f"+1415555{i:04d}", status=status, segments=segments,
                              message_sid=f"SM{next(_ids)}" if sid else None))
    return campaign


def _humans(n: int, firsts: int | None = None) -> list[tuple]:
    firsts = n if firsts is None else firsts
    return [("human", i < firsts, 10 + i) for i in range(n)]


def _varied(session, owner: str) -> None:
    """Ties and missing numbers for every sort key, several currencies,
    costs of every kind, recipients with and without delivery receipts."""
    _campaign(session, owner, "Alpha", cost=Decimal(10), sent=100, clicks=_humans(10), variants=2,
              conversions=[("30.00", "USD"), ("5.50", "EUR"), (None, None)])
    # CTR 20/200 = Alpha's 10/100; ROI (60 - 20) / 20 = Alpha's (30 - 10) / 10.
    _campaign(session, owner, "Bravo", cost=Decimal(20), sent=200, clicks=_humans(20),
              conversions=[("60.00", "USD")], sent_at=NOW - dt.timedelta(days=5))
    _campaign(session, owner, "Charlie", currency="EUR", cost=Decimal(5), sent=50,
              clicks=_humans(3, 2) + [("preview", False, 1), ("bot", False, 2)], conversions=[("10.00", "EUR")])
    # No cost and no audience: cost, profit, ROI and CTR are missing.
    _campaign(session, owner, "Delta", clicks=_humans(10), sent_at=NOW - dt.timedelta(days=9))
    # Nobody clicked: no conversion rate.
    _campaign(session, owner, "Echo", cost_per_message=Decimal("0.01"), sent=1000)
    # Recipients with receipts: 18 messages count as sent, 5 undelivered: audience 13.
    _campaign(session, owner, "Foxtrot", cost_per_segment=Decimal("0.05"), clicks=_humans(4),
              recipients=[("delivered", True, 2)] * 10 + [("undelivered", True, 1)] * 5 + [("sent", True, 1)] * 3
              + [("pending", False, 1)] * 2, conversions=[("12.00", "USD")])
    # A zero cost: profit but no ROI.
    _campaign(session, owner, "Golf", cost=Decimal(0), sent=10, clicks=_humans(2), conversions=[("7.00", "USD")])
    # Recipients without receipts: the audience is the messages sent.
    _campaign(session, owner, "Hotel", currency="EUR", cost_per_message=Decimal("0.02"), clicks=_humans(1),
              recipients=[("sent", True, 1)] * 4 + [("failed", False, 1)])
    # Same name as Alpha but for the case; no send time (the day it was created).
    _campaign(session, owner, "alpha", cost=Decimal(10), sent=100, clicks=_humans(10), sent_at=None)
    _campaign(session, owner, "India", cost=Decimal(3), sent=100, delivered=80, clicks=_humans(8, 4),
              conversions=[("1.00", "USD")] * 3, sent_at=NOW - dt.timedelta(days=1))
    _campaign(session, "someone-else", "Not mine", cost=Decimal(1), sent=1, clicks=_humans(1))


@pytest.fixture
def varied(app, actions):
    from wsgi import db

    key = actions.api_key()
    with app.app_context():
        _varied(db.session, "1")
        db.session.commit()
    return key


def _many(app, n: int, owner: str = "1") -> None:
    from wsgi import db

    with app.app_context():
        for i in range(n):
            _campaign(db.session, owner, f"Campaign {i:03d}", cost=Decimal(i % 7), sent=100 + i,
                      sent_at=NOW - dt.timedelta(days=3, hours=i), clicks=_humans(i % 5),
                      conversions=[("9.90", "USD")] if i % 5 else [])
        db.session.commit()


@contextmanager
def statements(app):
    """The SQL statements run meanwhile."""
    from wsgi import db

    with app.app_context():
        engine = db.engine
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _load_counts(app, key) -> dict[str, int]:
    client = login(app)
    counts = {}
    for name, load in (
        ("dashboard, first", lambda: client.get("/smstrack/")),
        ("dashboard", lambda: client.get("/smstrack/?sort=ctr")),
        ("dashboard by ROI", lambda: client.get("/smstrack/?sort=roi&dir=asc")),
        ("API table by revenue", lambda: client.get("/smstrack/api/v1/campaigns/table?sort=revenue&dir=asc",
                                                    headers={"Authorization": f"Bearer {key}"})),
    ):
        with statements(app) as seen:
            response = load()
        assert response.status_code in (200, 404), response.text
        counts[name] = len(seen)
    return counts


def test_statements_per_page_do_not_grow_with_campaigns(make_app):
    from conftest import Actions

    counts = []
    for n in (3, 60):
        app = make_app()
        actions = Actions(app)
        key = actions.api_key()
        _many(app, n)
        counts.append(_load_counts(app, key))
        if n == 3:
            from conftest import _empty_tables

            _empty_tables(app.config["SQLALCHEMY_DATABASE_URI"])
    small, large = counts
    assert small == large, (small, large)
    assert large["dashboard"] <= 12, large


def test_page_two(app, actions):
    key = actions.api_key()
    _many(app, 60)
    client = login(app)
    first = client.get("/smstrack/")
    names = [f"Campaign {i:03d}" for i in range(60)]  # newest send first
    assert list_names(first.text) == names[:50]
    assert "Page 1 of 2 · 60 campaigns" in first.text and 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = client.get("/smstrack/?page=2")
    assert second.status_code == 200
    assert list_names(second.text) == names[50:]
    assert "Page 2 of 2" in second.text and 'href="/smstrack/?sort=date&amp;dir=desc" rel="prev"' in second.text
    past = client.get("/smstrack/?page=3")
    assert past.status_code == 404 and "There is no page 3: the list has 2." in past.text
    assert list_names(past.text) == names[50:]

    table = actions.api("GET", "/campaigns/table?page=2&per_page=25", key).json
    assert [r["name"] for r in table["rows"]] == names[25:50]
    assert (table["total"], table["page"], table["per_page"], table["pages"]) == (60, 2, 25, 3)
    empty = actions.api("GET", "/campaigns/table?page=9", key).json
    assert empty["rows"] == [] and empty["total"] == 60


def test_csv_has_every_row(app, actions):
    key = actions.api_key()
    _many(app, 60)
    for url, csv_text in (
        ("dashboard", login(app).get("/smstrack/campaigns.csv?sort=name&dir=asc").text),
        ("api", actions.api("GET", "/campaigns/table?format=csv&sort=name&dir=asc&page=2", key).text),
    ):
        rows = list(csv.reader(io.StringIO(csv_text)))
        assert [r[1] for r in rows[1:]] == [f"Campaign {i:03d}" for i in range(60)], url


@pytest.mark.parametrize(
    "query,field",
    [("page=0", "page"), ("page=x", "page"), ("per_page=201", "per_page"), ("per_page=0", "per_page"),
     ("sort=colour", "sort"), ("dir=sideways", "dir"), ("start=soon", "start")],
)
def test_api_table_bad_arguments(actions, query, field):
    key = actions.api_key()
    response = actions.api("GET", f"/campaigns/table?{query}", key)
    assert response.status_code == 400
    assert list(response.json["errors"]) == [field]


def test_openapi_describes_the_paging(client):
    get = client.get("/smstrack/api/v1/openapi.json").json["paths"]["/campaigns/table"]["get"]
    params = {p["name"]: p["schema"] for p in get["parameters"]}
    assert params["sort"]["enum"] == list(SORT_KEYS) and params["per_page"]["maximum"] == 200
    assert {"start", "end", "tz", "dir", "page", "format"} <= set(params) and "400" in get["responses"]


# -- the numbers and the order ------------------------------------------------


def _reference(app, owner="1"):
    """Each campaign with the report the campaign page gives."""
    from wsgi import db

    from flask_smstrack.reports.campaign import campaign_report

    with app.test_request_context():
        campaigns = db.session.execute(select(Campaign).where(Campaign.owner_id == owner)).scalars().all()
        return {c.id: (c.name, c.sent_at or c.created_at, campaign_report(c)) for c in campaigns}


def _value(sort, name, when, r):
    rate = Decimal("1e-10")
    value = {
        "name": lambda: name.lower(),
        "date": lambda: when,
        "revenue": lambda: r.own_revenue,
        "cost": lambda: r.cost,
        "profit": lambda: r.profit,
        "roi": lambda: r.roi,
        "sent": lambda: r.audience,
        "reached": lambda: r.reached,
        "clicks": lambda: r.clicks,
        "ctr": lambda: r.ctr,
        "conversions": lambda: r.conversions,
        "conversion_rate": lambda: r.conversion_rate,
        "opt_out_rate": lambda: r.opt_out_rate,
    }[sort]()
    if sort in ("roi", "ctr", "conversion_rate", "opt_out_rate") and value is not None:
        value = value.quantize(rate, rounding=ROUND_HALF_UP)
    return value


def _expected(reference, sort, descending):
    """What the list promises: by value (money within its currency), ties
    by id, the same direction; missing values last."""
    money = sort in ("revenue", "cost", "profit")
    keyed = [
        (cid, r.currency if money else "", _value(sort, name, when, r)) for cid, (name, when, r) in reference.items()
    ]
    known = sorted((k for k in keyed if k[2] is not None), key=lambda k: (k[1], k[2], k[0]), reverse=descending)
    unknown = sorted((k for k in keyed if k[2] is None), key=lambda k: (k[1], k[0]), reverse=descending)
    return [k[0] for k in known + unknown]


@pytest.mark.parametrize("sort", SORT_KEYS)
def test_each_sort_orders_by_the_reports_numbers(app, varied, actions, sort):
    reference = _reference(app)
    for direction in ("asc", "desc"):
        ids = [r["id"] for r in actions.api("GET", f"/campaigns/table?sort={sort}&dir={direction}", varied).json["rows"]]
        assert ids == _expected(reference, sort, direction == "desc"), direction


def test_list_numbers_are_the_reports(app, varied, actions):
    from wsgi import db

    from flask_smstrack.reports.campaign import CampaignData
    from flask_smstrack.reports.rollups import CampaignCounts

    with app.test_request_context():
        campaigns = db.session.execute(select(Campaign).where(Campaign.owner_id == "1")).scalars().all()
        # Counted from the raw rows alone, before any rollup.
        live = {c.id: CampaignData(c, counts=CampaignCounts(c, refresh_after=None)).report for c in campaigns}
    assert live[1].revenue == {"USD": Decimal("30.0000"), "EUR": Decimal("5.5000")} and live[1].conversions == 3

    def listed():
        with app.test_request_context():
            rows = campaign_list(ListFilter("1", tz="UTC"), sort="name", descending=False).rows
            return {row.campaign.id: row.report for row in rows}

    assert listed() == live  # the first list rolls up every campaign
    assert _reference(app) == {cid: (n, w, live[cid]) for cid, (n, w, _) in _reference(app).items()}

    # Clicks after the cut are counted live, by the list as by the report.
    with app.app_context():
        campaign = db.session.get(Campaign, 1)
        db.session.add(_click(campaign, campaign.links[0], dt.datetime.now(dt.timezone.utc)))
        db.session.commit()
    after = listed()
    assert after[1].clicks == live[1].clicks + 1
    assert after == {cid: r for cid, (_, _, r) in _reference(app).items()}

    table = {r["id"]: r for r in actions.api("GET", "/campaigns/table?per_page=200", varied).json["rows"]}
    for cid in after:
        report = actions.report(varied, cid)
        row = table[cid]
        for k in ("sent", "delivered", "clicks", "unique_clicks", "previews", "bots", "ctr", "conversions",
                  "conversion_rate", "cost", "profit", "roi", "roas", "opt_outs", "opt_out_rate"):
            assert row[k] == report[k], (cid, k)
        assert row["revenue"] == report["revenue"].get(report["currency"], "0.00")
        others = "; ".join(f"{v} {cur}" for cur, v in sorted(report["revenue"].items()) if cur != report["currency"])
        assert row["revenue_other_currencies"] == (others or None)


def test_batched_rollups_equal_the_live_tables(app, varied):
    """The rollups the list builds for all campaigns at once give every
    table of the campaign page the numbers of the raw rows."""
    from wsgi import db

    from flask_smstrack.reports.campaign import CampaignData
    from flask_smstrack.reports.export import table_json
    from flask_smstrack.reports.rollups import CampaignCounts
    from flask_smstrack.reports.tables import TABLES, campaign_table

    def tables(refresh_after):
        with app.test_request_context():
            out = {}
            for c in db.session.execute(select(Campaign).order_by(Campaign.id)).scalars():
                data = CampaignData(c, "Asia/Kolkata", CampaignCounts(c, refresh_after=refresh_after))
                out[c.id] = {name: table_json(campaign_table(data, name)) for name in TABLES}
            return out

    live = tables(None)
    with app.test_request_context():
        assert list(campaign_list_all(ListFilter(None, is_admin=True)))
    assert tables(dt.timedelta(days=1)) == live  # read from the rollups, no refresh


def test_filter_by_date_in_the_timezone(app, actions):
    from wsgi import db

    key = actions.api_key()
    with app.app_context():
        # 23:30 UTC on 1 March is 2 March in Paris.
        _campaign(db.session, "1", "Late", sent_at=dt.datetime(2024, 3, 1, 23, 30, tzinfo=dt.timezone.utc))
        db.session.commit()
    for tz, day in (("UTC", "2024-03-01"), ("Europe/Paris", "2024-03-02")):
        rows = actions.api("GET", f"/campaigns/table?start={day}&end={day}&tz={tz}", key).json["rows"]
        assert [(r["name"], r["sent_on"]) for r in rows] == [("Late", day)]
    for query in ("start=0001-01-01&end=9999-12-31&tz=Asia/Tokyo", "start=0001-01-01&end=9999-12-31&tz=America/Anchorage"):
        assert [r["name"] for r in actions.api("GET", f"/campaigns/table?{query}", key).json["rows"]] == ["Late"]
    assert actions.api("GET", "/campaigns/table?start=9999-12-31&tz=America/Anchorage", key).json["rows"] == []
    client = login(app)
    assert list_names(client.get("/smstrack/?start=0001-01-01&end=9999-12-31").text) == ["Late"]
