import re

import pytest

from conftest import click_id_of


def test_requires_a_key(actions):
    response = actions.client.get("/smstrack/api/v1/campaigns")
    assert response.status_code == 401
    assert "Authorization" in response.json["errors"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    bad = actions.api("GET", "/campaigns", "smst_not-a-key")
    assert bad.status_code == 401


def test_create_and_list_campaigns(actions):
    key = actions.api_key()
    created = actions.campaign(key, name="Black Friday", currency="eur", cost=None, cost_per_message="0.0079", sent=2000)
    assert created["id"] > 0
    assert (created["currency"], created["cost_per_message"], created["total_cost"]) == ("EUR", "0.0079", "15.80")
    listed = actions.api("GET", "/campaigns", key).json["campaigns"]
    assert [c["name"] for c in listed] == ["Black Friday"]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"currency": "USD"}, "name"),
        ({"name": "x"}, "currency"),
        ({"name": "x", "currency": "ABC"}, "currency"),
        ({"name": "x", "currency": "USD", "cost": "-5"}, "cost"),
        ({"name": "x", "currency": "USD", "cost": "1.23456"}, "cost"),
        ({"name": "x", "currency": "USD", "cost": "5", "cost_per_message": "0.01"}, "cost"),
        ({"name": "x", "currency": "USD", "sent": -1}, "sent"),
        ({"name": "x", "currency": "USD", "sent": "many"}, "sent"),
        ({"name": "", "currency": "USD"}, "name"),
    ],
)
def test_campaign_validation(actions, body, field):
    key = actions.api_key()
    response = actions.api("POST", "/campaigns", key, json=body)
    assert response.status_code == 400
    assert field in response.json["errors"]
    assert actions.api("GET", "/campaigns", key).json["campaigns"] == []


def test_malformed_json_and_wrong_type(actions):
    key = actions.api_key()
    response = actions.client.post(
        "/smstrack/api/v1/campaigns", data="{nope", content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert (response.status_code, list(response.json["errors"])) == (400, ["_body"])
    response = actions.client.post(
        "/smstrack/api/v1/campaigns", data="name=x", content_type="application/x-www-form-urlencoded",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 415


def test_create_link(actions):
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"], code="spring-24")
    assert link["code"] == "spring-24"
    assert link["short_url"] == "http://localhost/s/spring-24"
    assert link["destination_url"] == "https://shop.example.com/spring?src=sms"
    assert link["id"] > 0
    again = actions.api("POST", f"/campaigns/{campaign['id']}/links", key, json={"destination_url": "https://a.example", "code": "spring-24"})
    assert again.status_code == 409
    assert "code" in again.json["errors"]
    listed = actions.api("GET", f"/campaigns/{campaign['id']}/links", key).json["links"]
    assert [link["code"] for link in listed] == ["spring-24"]


def test_short_url_uses_base_url(make_app):
    from conftest import Actions

    actions = Actions(make_app(SMSTRACK_BASE_URL="https://go.example.com/"))
    key = actions.api_key()
    link = actions.link(key, actions.campaign(key)["id"], code="abc123")
    assert link["short_url"] == "https://go.example.com/s/abc123"


@pytest.mark.parametrize(
    "body,field",
    [
        ({"destination_url": "javascript:alert(1)"}, "destination_url"),
        ({"destination_url": "ftp://example.com/file"}, "destination_url"),
        ({"destination_url": "/relative/path"}, "destination_url"),
        ({"destination_url": "https://"}, "destination_url"),
        ({}, "destination_url"),
        ({"destination_url": "https://example.com", "code": "a b"}, "code"),
        ({"destination_url": "https://example.com", "code": "ab"}, "code"),
        ({"destination_url": "https://example.com", "code": "api"}, "code"),
        ({"destination_url": "https://example.com", "utm": {"utm_bogus": "x"}}, "utm"),
        ({"destination_url": "https://example.com", "append_click_id": "maybe"}, "append_click_id"),
    ],
)
def test_link_validation(actions, body, field):
    key = actions.api_key()
    campaign = actions.campaign(key)
    response = actions.api("POST", f"/campaigns/{campaign['id']}/links", key, json=body)
    assert response.status_code == 400
    assert field in response.json["errors"]


def test_report_numbers(actions, app):
    """10 sent at 1.00 each; 4 human clicks by 3 people, 1 preview, 1 bot;
    2 conversions of 30.00 and 20.00, one in EUR on top."""
    from conftest import ANDROID, DESKTOP, IMESSAGE_PREVIEW

    key = actions.api_key()
    campaign = actions.campaign(key, cost=None, cost_per_message="1.00", sent=10)
    link = actions.link(key, campaign["id"])
    first = actions.click(link["code"])
    actions.click(link["code"])  # repeat by the same person
    second = actions.click(link["code"], ua=ANDROID, client=app.test_client())
    actions.click(link["code"], ua=DESKTOP, client=app.test_client())
    actions.click(link["code"], ua=IMESSAGE_PREVIEW, client=app.test_client())
    actions.click(link["code"], ua="curl/8.5.0", client=app.test_client())
    conversions = [
        (first, "30.00", "USD", "o-1"),
        (second, "20", "USD", "o-2"),
        (second, "5.50", "EUR", "o-3"),
    ]
    for response, revenue, currency, order in conversions:
        body = {"click_id": click_id_of(response), "event": "purchase", "revenue": revenue, "currency": currency, "order_id": order}
        created = actions.api("POST", "/conversions", key, json=body)
        assert created.status_code == 201, created.json
        assert (created.json["attributed"], created.json["trust"]) == (True, "verified")
    report = actions.report(key, campaign["id"])
    assert report == {
        "campaign_id": campaign["id"],
        "currency": "USD",
        "sent": 10,
        "delivered": None,
        "reached": 10,  # sent, no receipts: what CTR divides by
        "clicks": 4,
        "unique_clicks": 3,
        "previews": 1,
        "bots": 1,
        "human_confirmed": 0,
        "forwards": 0,
        "segments": None,
        "undelivered": None,
        "ctr": 0.3,
        "conversions": 3,
        "unattributed_conversions": 0,
        "conversion_rate": 1.0,
        "revenue": {"EUR": "5.50", "USD": "50.00"},
        "revenue_verified": {"EUR": "5.50", "USD": "50.00"},
        "revenue_unverified": {"EUR": "0.00", "USD": "0.00"},
        "refunded": {"EUR": "0.00", "USD": "0.00"},
        "verified_revenue_only": False,
        "net_revenue": "50.00",
        "cost": "10.00",
        "profit": "40.00",
        "roi": 4.0,
        "roas": 5.0,
        "epc": "16.6667",
        "aov": "25.00",  # 50.00 USD / 2 USD orders (the EUR order stays apart)
        "cost_per_conversion": "3.3333",
        "opt_outs": 0,
        "opt_out_rate": None,
    }


def test_empty_report_has_no_division_by_zero(actions):
    key = actions.api_key()
    campaign = actions.campaign(key, cost=None, sent=None)
    report = actions.report(key, campaign["id"])
    assert report["ctr"] is None and report["conversion_rate"] is None and report["roi"] is None
    assert report["cost"] is None and report["profit"] is None and report["revenue"] == {}


def test_server_conversion_replay_returns_200(actions):
    key = actions.api_key()
    body = {"event": "purchase", "revenue": "10", "currency": "USD", "order_id": "S-1"}
    assert actions.api("POST", "/conversions", key, json=body).status_code == 201
    replay = actions.api("POST", "/conversions", key, json=body)
    assert (replay.status_code, replay.json["duplicate"]) == (200, True)


def test_other_users_campaigns_are_invisible(actions):
    alice = actions.api_key("alice@example.com")
    bob = actions.api_key("bob@example.com")
    campaign = actions.campaign(alice)
    link = actions.link(alice, campaign["id"])
    for path in (f"/campaigns/{campaign['id']}", f"/campaigns/{campaign['id']}/report", f"/campaigns/{campaign['id']}/links"):
        response = actions.api("GET", path, bob)
        assert response.status_code == 404, path
        assert "campaign_id" in response.json["errors"]
    assert actions.api("POST", f"/campaigns/{campaign['id']}/links", bob, json={"destination_url": "https://x.example"}).status_code == 404
    assert actions.api("GET", "/campaigns", bob).json["campaigns"] == []
    # Bob cannot attribute a verified conversion to Alice's click either.
    click = actions.click(link["code"])
    body = {"click_id": click_id_of(click), "event": "purchase", "revenue": "1", "currency": "USD"}
    assert actions.api("POST", "/conversions", bob, json=body).json["attributed"] is False
    admin = actions.api_key("root@example.com", admin=True)
    assert actions.api("GET", f"/campaigns/{campaign['id']}/report", admin).status_code == 200


def test_unknown_route_is_json(actions):
    key = actions.api_key()
    response = actions.api("GET", "/nothing-here", key)
    assert response.status_code == 404
    assert "errors" in response.json


def test_wrong_method_is_405(actions):
    key = actions.api_key()
    response = actions.api("DELETE", "/campaigns", key)
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "POST"}


def test_openapi_document(client):
    response = client.get("/smstrack/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json
    assert doc["openapi"].startswith("3.")
    assert "/campaigns/{campaign_id}/report" in doc["paths"]
    campaign = doc["components"]["schemas"]["Campaign"]
    assert set(campaign["required"]) == {"name", "currency"}


def test_campaign_list_table(actions, app):
    key = actions.api_key()
    campaign = actions.campaign(key, name="=Spring", cost="10.00", sent=100)
    link = actions.link(key, campaign["id"])
    actions.click(link["code"])
    other = actions.api_key("other@example.com")
    actions.campaign(other, name="Not mine")
    table = actions.api("GET", "/campaigns/table", key).json
    assert [(r["name"], r["clicks"], r["ctr"], r["cost"], r["profit"]) for r in table["rows"]] == [
        ("=Spring", 1, 0.01, "10.00", "-10.00")
    ]
    today = table["rows"][0]["sent_on"]
    assert actions.api("GET", f"/campaigns/table?start={today}&end={today}", key).json["rows"]
    assert actions.api("GET", "/campaigns/table?end=2000-01-01", key).json["rows"] == []
    bad = actions.api("GET", "/campaigns/table?start=yesterday", key)
    assert bad.status_code == 400 and "start" in bad.json["errors"]
    csv = actions.api("GET", "/campaigns/table?format=csv", key).data.decode().splitlines()
    assert csv[1].split(",")[1] == "'=Spring"


def test_openapi_lists_every_endpoint(client, app):
    doc = client.get("/smstrack/api/v1/openapi.json").json
    rules = {
        re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/smstrack/api/v1"))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("smstrack_api.") and rule.endpoint not in ("smstrack_api.not_found", "smstrack_api.openapi")
    }
    assert rules == set(doc["paths"])
