"""No GET changes anything: every GET route of the app, called with the
ids of real data as an admin on the dashboard and with an API key, leaves
every stored row as it was. A page of another site can make a browser GET
anything with its cookies, so a GET must never export, send or delete."""
import pytest
from sqlalchemy import select, text

from conftest import click_id_of
from flask_smstrack.models import Base
from test_dashboard import login

#: Endpoints whose GET writes on purpose.
WRITES_ON_GET = {
    # The tracked redirect: counting the tap on an SMS link is its whole job,
    # and phones follow links with GET.
    "smstrack_links.follow",
}
#: The rollups are compared too: reports only read them, the catch-up job
#: builds them (see tests/test_rollups_catchup.py for a fresh import).
DERIVED_TABLES: set[str] = set()
#: Bookkeeping no user sees or acts on: when an API key was last used,
#: written by the API's authentication (at most every five minutes).
IGNORED_COLUMNS = {("smstrack_api_keys", "last_used_at")}


@pytest.fixture
def app(make_app):
    return make_app(SMSTRACK_BASE_URL="https://go.example.com")


@pytest.fixture
def seeded(app, actions):
    """A campaign with links, variants, recipients (prepared, one batch
    exported, one ready), a click and a conversion."""
    from wsgi import db

    from flask_smstrack.sms.messages import prepare_messages
    from flask_smstrack.sms.outbox import mark_exported

    actions.user("admin@example.com", admin=True)
    key = actions.api_key("admin@example.com")
    campaign = actions.campaign(key, message_template="Hi {first_name}: {link}", cost_per_segment="0.01", cost=None)
    link = actions.link(key, campaign["id"])
    for name in ("A", "B"):
        made = actions.api("POST", f"/campaigns/{campaign['id']}/variants", key,
                           json={"name": name, "message_template": f"{name} {{first_name}}: {{link}}"})
        assert made.status_code == 201
    people = "phone,first_name\n" + "".join(f"+1415555{100 + i:04d},P{i}\n" for i in range(6))
    assert actions.client.post(
        f"/smstrack/api/v1/campaigns/{campaign['id']}/recipients", data=people, content_type="text/csv",
        headers={"Authorization": f"Bearer {key}"},
    ).status_code == 200
    with app.app_context():
        from flask_smstrack.models import Campaign

        prepare_messages(db.session.get(Campaign, campaign["id"]))
        mark_exported(campaign["id"])
    late = "phone,first_name\n+14155550200,Late\n"
    actions.client.post(
        f"/smstrack/api/v1/campaigns/{campaign['id']}/recipients", data=late, content_type="text/csv",
        headers={"Authorization": f"Bearer {key}"},
    )
    with app.app_context():
        prepare_messages(db.session.get(Campaign, campaign["id"]))
    click_id = click_id_of(actions.click(link["code"]))
    assert actions.collect({"type": "conversion", "click_id": click_id, "order_id": "A-1",
                            "revenue": "20", "currency": "USD"}).status_code == 202
    variants = actions.api("GET", f"/campaigns/{campaign['id']}/variants", key).json["variants"]
    endpoint = actions.api("POST", "/webhook-endpoints", key,
                           json={"url": "https://crm.example.com/hook", "events": ["click"]}).json
    return {"key": key, "campaign_id": campaign["id"], "variant_id": variants[0]["id"], "code": link["code"],
            "link_id": link["id"], "endpoint_id": endpoint["id"]}


def _snapshot(app) -> dict[str, list]:
    """Every row of every table but the derived ones, in id order."""
    from wsgi import db

    rows = {}
    with app.app_context():
        for table in Base.metadata.sorted_tables:
            if table.name in DERIVED_TABLES:
                continue
            columns = [c for c in table.columns if (table.name, c.name) not in IGNORED_COLUMNS]
            query = select(*columns).order_by(*table.primary_key.columns)
            rows[table.name] = [tuple(r) for r in db.session.execute(query)]
        db.session.commit()
    return rows


def _get_urls(app, seeded) -> list[str]:
    """A URL for each GET route, its arguments filled with seeded data."""
    from flask_smstrack.reports.tables import TABLES

    values = {
        "campaign_id": seeded["campaign_id"],
        "variant_id": seeded["variant_id"],
        "name": sorted(TABLES)[0],
        "filename": "dashboard.css",
        "code": seeded["code"],
        "link_id": seeded["link_id"],
        "endpoint_id": seeded["endpoint_id"],
        "_rest": "no/such/endpoint",
    }
    urls = []
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in WRITES_ON_GET:
            continue
        missing = rule.arguments - set(values)
        assert not missing, f"{rule.rule}: give this test a value for {missing}"
        urls.append(adapter.build(rule.endpoint, {name: values[name] for name in rule.arguments}))
    return urls


def test_every_get_route_leaves_the_database_unchanged(app, seeded):
    before = _snapshot(app)
    statuses = {status for _, status in _recipient_statuses(app)}
    assert {"exported", "ready"} <= statuses and all(before[name] for name in ("smstrack_clicks", "smstrack_conversions"))
    admin = login(app, "admin@example.com")
    api = {"Authorization": f"Bearer {seeded['key']}"}
    urls = _get_urls(app, seeded)
    assert len(urls) >= 25
    answers = {}
    for url in urls:
        for query in ("", "?format=csv", "?format=json&segment=all"):
            for client, headers in ((admin, {}), (app.test_client(), api), (app.test_client(), {})):
                response = client.get(url + query, headers=headers, buffered=True)
                assert response.status_code < 500, (url + query, response.text[:300])
                answers.setdefault(url + query, response.status_code)
    # The reads did reach the data: pages, downloads and API answers.
    assert answers[f"/smstrack/campaigns/{seeded['campaign_id']}/messages.csv"] == 200
    assert answers[f"/smstrack/api/v1/campaigns/{seeded['campaign_id']}/messages?format=csv"] == 200
    assert _snapshot(app) == before


def _recipient_statuses(app):
    from wsgi import db

    with app.app_context():
        return list(db.session.execute(text("SELECT id, status FROM smstrack_recipients ORDER BY id")))
