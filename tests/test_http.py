"""What no input may do: ids beyond what a column holds, text no database
stores (NUL, lone surrogates) and JSON nested too deep are answered 4xx
naming what is wrong, on the API, the collector, the webhooks and the
dashboard, before any query; never a 500."""
import json

import pytest
from sqlalchemy import func, select

from conftest import click_id_of
from flask_smstrack.models import Campaign, Conversion
from test_dashboard import csrf_token, login

HUGE = [2**31, 2**63, 2**64, 10**30]
#: Text that cannot be stored, as a JSON body carries it.
BROKEN = {"surrogate": "Spring \ud800 sale", "nul": "Spring\x00sale"}


@pytest.fixture
def owned(app, actions):
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"])
    actions.user("admin@example.com", admin=True)
    return {"key": key, "campaign": campaign, "link": link}


def _count(app, model) -> int:
    from wsgi import db

    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.mark.parametrize("big", HUGE)
def test_ids_beyond_their_column_are_404(app, actions, owned, big):
    key = owned["key"]
    for method, path in [
        ("GET", f"/campaigns/{big}"),
        ("GET", f"/campaigns/{big}/report"),
        ("GET", f"/campaigns/{big}/tables/daily"),
        ("GET", f"/campaigns/{big}/messages?format=json"),
        ("POST", f"/campaigns/{big}/messages/export"),
        ("POST", f"/campaigns/{big}/links"),
        ("DELETE", f"/campaigns/{owned['campaign']['id']}/variants/{big}"),
    ]:
        response = actions.api(method, path, key, json={"destination_url": "https://shop.example.com/"})
        assert response.status_code == 404, (path, response.text)
        assert set(response.json["errors"]) in ({"campaign_id"}, {"variant_id"}), response.json
    listed = actions.api("GET", f"/conversions?campaign_id={big}", key)
    assert listed.status_code == 404 and "campaign_id" in listed.json["errors"]
    preview = actions.api("POST", "/messages/preview", key, json={"text": "Hi", "campaign_id": big})
    assert preview.status_code == 400 and "campaign_id" in preview.json["errors"]
    offset = actions.api("GET", f"/campaigns/{owned['campaign']['id']}/recipients?offset={big}", key)
    assert offset.status_code == 400 and "offset" in offset.json["errors"]
    paged = actions.api("GET", f"/campaigns/{owned['campaign']['id']}/messages?format=json&offset={big}", key)
    assert paged.status_code == 200 and paged.json == {"messages": []}
    client = login(app, "admin@example.com")
    page = client.get(f"/smstrack/campaigns/{big}")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert client.get(f"/smstrack/campaigns/{big}/messages.csv").status_code == 404


@pytest.mark.parametrize("kind", BROKEN)
def test_text_that_cannot_be_stored_is_400_naming_the_field(app, actions, owned, kind):
    key, campaign_id, text = owned["key"], owned["campaign"]["id"], BROKEN[kind]
    cases = [
        ("/campaigns", {"name": text, "currency": "USD"}, ["name"]),
        ("/campaigns", {"name": "Ok", "currency": "USD", "message_template": text}, ["message_template"]),
        (f"/campaigns/{campaign_id}/variants", {"name": text, "message_template": "Hi {link}"}, ["name"]),
        (f"/campaigns/{campaign_id}/links", {"destination_url": f"https://shop.example.com/{text}"}, ["destination_url"]),
        (f"/campaigns/{campaign_id}/links", {"destination_url": "https://shop.example.com/", "code": text}, ["code"]),
        (
            f"/campaigns/{campaign_id}/links",
            {"destination_url": "https://shop.example.com/", "utm": {"utm_source": text}},
            ["utm"],
        ),
        ("/messages/preview", {"text": text}, ["text"]),
        ("/conversions", {"order_id": text}, ["order_id"]),
        ("/conversions", {"order_id": "A-1", "event": text}, ["event"]),
    ]
    for path, body, fields in cases:
        response = actions.api("POST", path, key, data=json.dumps(body), content_type="application/json")
        assert response.status_code == 400, (path, body, response.text)
        assert sorted(response.json["errors"]) == fields, response.json
    assert _count(app, Campaign) == 1 and _count(app, Conversion) == 0

    # The public collector, with a real click.
    click_id = click_id_of(actions.click(owned["link"]["code"]))
    for field in ("order_id", "event", "click_id"):
        body = {"type": "conversion", "click_id": click_id, "order_id": "A-1", field: text}
        response = actions.collect(json.dumps(body))
        assert response.status_code == 400, response.text
        assert list(response.json["errors"]) == [field]
    assert actions.collect(json.dumps({"type": text})).status_code == 400
    assert _count(app, Conversion) == 0


def test_nul_in_query_and_form_values_is_400_naming_them(app, actions, owned):
    key, campaign_id = owned["key"], owned["campaign"]["id"]
    audience = actions.api("GET", f"/campaigns/{campaign_id}/recipients?variant=A%00", key)
    assert audience.status_code == 400 and list(audience.json["errors"]) == ["variant"]
    table = actions.api("GET", "/campaigns/table?sort=%00", key)
    assert table.status_code == 400 and list(table.json["errors"]) == ["sort"]
    client = app.test_client()
    token = csrf_token(client, "/smstrack/login")
    response = client.post("/smstrack/login", data={"email": "owner@example.com\x00", "password": "x", "csrf_token": token})
    assert response.status_code == 400 and "email" in response.text
    dashboard = login(app)
    form = csrf_token(dashboard, "/smstrack/campaigns/new")
    created = dashboard.post(
        "/smstrack/campaigns/new", data={"csrf_token": form, "name": "Spring\x00", "currency": "USD"}
    )
    assert created.status_code == 400 and "name" in created.text
    assert _count(app, Campaign) == 1


@pytest.mark.parametrize("depth", [33, 2000, 100_000])
def test_json_nested_too_deep_is_refused_before_parsing(app, actions, owned, depth):
    deep = "[" * depth + "]" * depth
    for response in (
        actions.collect(deep),
        actions.collect('{"type": "conversion", "order_id": ' + deep + "}"),
        actions.api("POST", "/campaigns", owned["key"], data='{"currency": "USD", "name": ' + deep + "}", content_type="application/json"),
    ):
        assert response.status_code in (400, 413), response.text
        assert list(response.json["errors"]) == ["_body"]
    # Brackets inside strings are text, and 32 levels (the object and 31 arrays) are fine.
    fine = {"type": "conversion", "order_id": "[" * 40, "event": "purchase"}
    assert actions.collect(json.dumps(fine)).status_code == 202
    nested = "[" * 31 + "]" * 31
    answer = actions.api("POST", "/campaigns", owned["key"], data='{"currency": "USD", "name": ' + nested + "}", content_type="application/json")
    assert answer.status_code == 400 and list(answer.json["errors"]) == ["name"]
