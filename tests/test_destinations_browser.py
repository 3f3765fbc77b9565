"""Landing-page tests in a real browser: the link form's destination rows
and the campaign page's destination table, at desktop (1280) and phone (390)
widths, served by gunicorn. Screenshots go to ``test-artifacts/``."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest

from e2e.browser import BIN, DESKTOP, dashboard_tab, require_chromium, screenshot

require_chromium()

from sqlalchemy import create_engine, insert, select  # noqa: E402

from conftest import PASSWORD_HASH_METHOD, _empty_tables  # noqa: E402
from e2e.seed import Seed  # noqa: E402
from e2e.support import HOST, ROOT, clean_env, free_port, gunicorn  # noqa: E402

# Pages and layout: the same on every database, checked in the SQLite pass.
pytestmark = pytest.mark.once

OWNER = "tests-owner@example.com"
PASSWORD = "correct horse battery"
PHONE_390 = {"width": 390, "height": 844}
#: Destination number: (label, url, weight, visitors, conversions).
SEEDED = {
    1: ("Spring page", "https://shop.example.com/spring", 50, 200, 10),
    2: ("Offer 20% off everything this weekend", "https://shop.example.com/offers/weekend-twenty?ref=sms", 30, 150, 30),
    3: ("Quiz", "https://quiz.example.com/", 20, 100, 10),
}


def _seed(url: str, campaign_id: int, link_id: int) -> None:
    from flask_smstrack.models import Click, Conversion

    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    c = Click.__table__.c
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            rows = [
                {"click_id": f"dest{number}x{i:024d}", "created_at": now + dt.timedelta(seconds=i), "link_id": link_id,
                 "campaign_id": campaign_id, "kind": "human", "is_first": True, "human_confirmed": True,
                 "device_type": "mobile", "os": "iOS", "browser": "Mobile Safari", "destination_no": number}
                for number, (*_, visitors, _k) in SEEDED.items() for i in range(visitors)
            ]
            conn.execute(insert(Click.__table__), rows)
            for number, (*_, conversions) in SEEDED.items():
                pks = conn.execute(select(c.id).where(c.destination_no == number).order_by(c.id).limit(conversions))
                conn.execute(insert(Conversion.__table__), [
                    {"click_pk": pk, "campaign_id": campaign_id, "link_id": link_id, "event": "purchase",
                     "revenue": Decimal("25.00"), "currency": "USD", "order_id": f"D{number}-{pk}",
                     "source": "snippet", "trust": "unverified", "created_at": now}
                    for (pk,) in pks.all()
                ])
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def served(migrated, tmp_path_factory) -> Iterator[dict]:
    _empty_tables(migrated)
    tmp = tmp_path_factory.mktemp("destinations-browser")
    port = free_port()
    url = f"http://{HOST}:{port}"
    env = clean_env(DATABASE_URL=migrated, SECRET_KEY="destinations-browser-secret", SMSTRACK_BASE_URL=url,
                    SMSTRACK_SPOOL_DIR=str(tmp / "spool"), SMSTRACK_PASSWORD_HASH_METHOD=PASSWORD_HASH_METHOD)
    with Seed(env) as seed:
        seed.user(OWNER, PASSWORD)
        campaign_id = seed.campaign(OWNER, name="Spring landing test", currency="USD", cost="40", sent=2000)
        seed.link(campaign_id, "https://shop.example.com/spring", "spring-test")
        tested = seed.link(campaign_id, "https://shop.example.com/spring", "spring-split")
        from flask_smstrack.manage import get_link, update_link

        with seed.app.app_context():
            link = get_link("spring-split")
            update_link(link, {"destinations": [
                {"label": label, "url": dest, "weight": weight} for label, dest, weight, *_ in SEEDED.values()]})
            tested_id, plain_id = link.id, get_link("spring-test").id
    _seed(migrated, campaign_id, tested_id)
    with gunicorn(BIN / "gunicorn", "wsgi:app", port=port, cwd=ROOT, env=env, log=tmp / "gunicorn.log",
                  workers=1, ready_path="/smstrack/login") as server:
        yield {"url": server.url, "campaign": campaign_id, "tested": tested_id, "plain": plain_id, "short": tested}


def _fits(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"page is {width}px wide"


@pytest.mark.parametrize("size,viewport", [("desktop", DESKTOP), ("phone", PHONE_390)])
def test_link_form_and_destination_table(browser, served, size, viewport):
    options = {"is_mobile": True, "has_touch": True} if size == "phone" else {}
    base, campaign = served["url"], served["campaign"]
    with dashboard_tab(browser, base, OWNER, PASSWORD, viewport, **options) as (page, seen):
        page.set_default_timeout(10_000)
        # The campaign page: the tested link's table, its verdict and CSV.
        page.goto(f"{base}/smstrack/campaigns/{campaign}")
        table = page.locator(f"#destinations-{served['tested']}")
        rows = table.locator("tbody tr")
        assert rows.count() == 3
        assert rows.nth(1).locator("th").inner_text().startswith("Offer 20% off")
        cells = rows.nth(1).locator("td").all_inner_texts()
        assert cells[2:5] == ["150", "30", "20.0%"], cells
        assert table.locator(".st-verdict-called").inner_text().startswith(
            "Offer 20% off everything this weekend beats Spring page on conversion rate: 20.0% vs 5.0%")
        assert table.locator(".st-csv").get_attribute("href").endswith(
            f"/links/{served['tested']}/destinations.csv")
        _fits(page)
        table.scroll_into_view_if_needed()
        screenshot(page, f"destinations-table-{size}")

        # The link form: three rows (for a new test, or two saved and a blank), filled and saved.
        page.goto(f"{base}/smstrack/campaigns/{campaign}/links/{served['plain']}/edit")
        if page.locator("details.st-destinations").get_attribute("open") is None:  # the other width saved it already
            page.click("details.st-destinations > summary")
        assert page.locator("fieldset.st-destination").count() == 3
        for n, (label, dest, weight) in enumerate(
                [("Spring page", "https://shop.example.com/spring", "60"),
                 ("Offer", "https://shop.example.com/offer", "40")], 1):
            page.fill(f"#f-dest_label_{n}", label)
            page.fill(f"#f-dest_url_{n}", dest)
            page.fill(f"#f-dest_weight_{n}", weight)
        _fits(page)
        screenshot(page, f"destinations-form-{size}")
        with page.expect_navigation():
            page.click("form.st-form button[type=submit]")
        assert page.url.endswith(f"/smstrack/campaigns/{campaign}#links")
        assert "test: 2 destinations" in page.inner_text("#links")

        # A mistake: the form comes back (400) naming the row and the rule.
        page.goto(f"{base}/smstrack/campaigns/{campaign}/links/{served['plain']}/edit")
        assert page.locator("details.st-destinations").get_attribute("open") is not None
        assert page.locator("fieldset.st-destination").count() == 3  # two kept, one blank
        page.fill("#f-dest_weight_2", "0")
        with page.expect_navigation():
            page.click("form.st-form button[type=submit]")
        assert "Destination 2, weight: Must be greater than or equal to 1" in page.inner_text("main")
        _fits(page)
        screenshot(page, f"destinations-form-error-{size}")
        assert [p for p in seen.problems if "400" not in p] == []
    assert seen.outside() == []
