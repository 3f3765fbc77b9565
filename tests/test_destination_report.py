"""The landing-page test's table: visitors, conversions, conversion rate and
revenue per click per destination, the A/B test's verdict, and the same
numbers on the campaign page, in the JSON API and in the CSVs."""
import csv
import datetime as dt
import html
import io
import re
from decimal import Decimal

import pytest
from sqlalchemy import insert

from flask_smstrack.models import Click, Conversion
from flask_smstrack.reports.verdicts import compare_variants, summary_verdict
from flask_smstrack.tracking.classify import Agent
from flask_smstrack.tracking.clicks import click_row, new_click_id
from test_dashboard import login

THREE = [
    {"label": "Spring page", "url": "https://shop.example.com/spring", "weight": 50},
    {"label": "Offer 20%", "url": "https://shop.example.com/offer", "weight": 30},
    {"label": "Quiz", "url": "https://quiz.example.com/", "weight": 20},
]
#: Per destination: visitors, conversions, revenue of each conversion (USD).
SEEDED = {1: (300, 15, "10.00"), 2: (300, 45, "20.00"), 3: (200, 12, "5.50")}


def _seed(app, campaign_id: int, link_id: int) -> None:
    """Clicks and conversions as the redirect and the collector store them."""
    from wsgi import db

    phone = Agent("human", "mobile", "iOS", "Safari")
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    with app.app_context():
        for number, (visitors, conversions, revenue) in SEEDED.items():
            rows = []
            for i in range(visitors):
                click_id = new_click_id()
                rows.append(click_row(click_id, now, link_id, campaign_id, "human", phone, is_first=True,
                                      destination_no=number))
                if i < 20:  # returning visitors are one visitor each
                    rows.append(click_row(new_click_id(), now, link_id, campaign_id, "human", phone,
                                          visitor_id=click_id, destination_no=number))
            rows.append(click_row(new_click_id(), now, link_id, campaign_id, "bot", phone, destination_no=number))
            db.session.execute(insert(Click), rows)
            db.session.flush()
            firsts = db.session.query(Click.id).filter(
                Click.destination_no == number, Click.visitor_id.is_(None), Click.kind == "human"
            ).order_by(Click.id).limit(conversions).all()
            for n, (pk,) in enumerate(firsts):
                db.session.add(Conversion(click_pk=pk, campaign_id=campaign_id, link_id=link_id, event="purchase",
                                          revenue=Decimal(revenue), currency="USD", order_id=f"O-{number}-{n}",
                                          source="server", trust="verified", owner_id="1"))
        # Another currency is counted as a conversion, never summed into USD.
        (pk,) = db.session.query(Click.id).filter(Click.destination_no == 3, Click.kind == "human").order_by(
            Click.id.desc()).first()
        db.session.add(Conversion(click_pk=pk, campaign_id=campaign_id, link_id=link_id, event="purchase",
                                  revenue=Decimal("99.00"), currency="EUR", order_id="E-1", source="server",
                                  trust="verified", owner_id="1"))
        db.session.commit()


@pytest.fixture
def tested(app, actions):
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"], destinations=THREE)
    _seed(app, campaign["id"], link["id"])
    return key, campaign, link


def test_table_counts_visitors_conversions_and_revenue(actions, tested):
    key, _, link = tested
    body = actions.api("GET", f"/links/{link['id']}/destinations", key).json
    assert body["name"] == "destination_test"
    rows = {row["destination"]: row for row in body["rows"]}
    assert [row["destination"] for row in body["rows"]] == ["Spring page", "Offer 20%", "Quiz"]
    assert (rows["Spring page"]["visitors"], rows["Spring page"]["conversions"]) == (300, 15)
    assert rows["Spring page"]["conversion_rate"] == 0.05
    assert (rows["Spring page"]["revenue"], rows["Spring page"]["revenue_per_click"]) == ("150.00", "0.50")
    assert (rows["Offer 20%"]["conversions"], rows["Offer 20%"]["revenue"]) == (45, "900.00")
    assert rows["Offer 20%"]["revenue_per_click"] == "3.00"
    # The EUR order counts as a conversion, not as USD revenue.
    assert (rows["Quiz"]["visitors"], rows["Quiz"]["conversions"], rows["Quiz"]["revenue"]) == (200, 13, "66.00")
    assert rows["Spring page"]["cr_p"] is None and rows["Offer 20%"]["cr_p"] < 0.001


def test_verdict_is_the_ab_tests_own(actions, tested):
    key, _, link = tested
    body = actions.api("GET", f"/links/{link['id']}/destinations", key).json
    expected = summary_verdict(compare_variants(
        "conversion_rate", [("Spring page", 15, 300), ("Offer 20%", 45, 300), ("Quiz", 13, 200)]))
    assert body["notes"] == [expected]
    assert expected.startswith("Offer 20% beats Spring page on conversion rate: 15.0% vs 5.0% (p < 0.001")
    assert "Bonferroni-corrected for 2 comparisons" in expected


def test_too_early_with_few_visitors(app, actions):
    key = actions.api_key()
    link = actions.link(key, actions.campaign(key)["id"], destinations=THREE[:2])
    for _ in range(3):
        actions.click(link["code"], client=app.test_client())
    body = actions.api("GET", f"/links/{link['id']}/destinations", key).json
    assert sum(row["visitors"] for row in body["rows"]) == 3
    assert body["notes"][0].startswith("Too early to call on conversion rate")


def _cells(page: str, number: int) -> list[str]:
    row = re.search(rf'<tr data-destination="{number}">(.*?)</tr>', page, re.S).group(1)
    return [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]


def test_same_numbers_on_the_page_in_the_api_and_in_the_csvs(app, actions, tested):
    key, campaign, link = tested
    client = login(app)
    api = actions.api("GET", f"/links/{link['id']}/destinations", key).json
    api_csv = actions.api("GET", f"/links/{link['id']}/destinations?format=csv", key)
    page_csv = client.get(f"/smstrack/campaigns/{campaign['id']}/links/{link['id']}/destinations.csv")
    assert page_csv.status_code == 200 and page_csv.mimetype == "text/csv"
    assert page_csv.headers["Content-Disposition"] == f'attachment; filename="link-{link["id"]}-destinations.csv"'
    assert page_csv.text == api_csv.text
    header, *rows = list(csv.reader(io.StringIO(page_csv.text)))
    keys = [c["key"] for c in api["columns"]]
    assert header == keys
    assert rows == [["" if row[k] is None else str(row[k]) for k in keys] for row in api["rows"]]
    page = client.get(f"/smstrack/campaigns/{campaign['id']}").text
    assert html.escape(api["notes"][0], quote=False) in page
    assert _cells(page, 1) == ["Spring page", THREE[0]["url"], "50", "300", "15", "5.0%", "baseline", "baseline",
                               "150.00", "0.50"]
    assert _cells(page, 2) == ["Offer 20%", THREE[1]["url"], "30", "300", "45", "15.0%", "< 0.001", "> 99.9%",
                               "900.00", "3.00"]
    assert _cells(page, 3)[3:6] == ["200", "13", "6.5%"]


def test_unknown_or_foreign_link_is_a_404(app, actions, tested):
    key, campaign, link = tested
    assert actions.api("GET", "/links/999999/destinations", key).status_code == 404
    stranger = actions.api_key("stranger@example.com")
    assert actions.api("GET", f"/links/{link['id']}/destinations", stranger).status_code == 404
    client = login(app)
    assert client.get(f"/smstrack/campaigns/{campaign['id']}/links/999/destinations.csv").status_code == 404
