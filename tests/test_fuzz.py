"""Generated input, in process, against the real database: every operation
of the API's OpenAPI document through schemathesis (bodies, parameters and
ids that fit the document, and ones that do not), and random bodies at the
public collector and random paths at the redirect through hypothesis.
No answer may be a 5xx, and every answer the document describes must match
it. The seed is fixed (``derandomize``): a run finds what the last one did.
"""
import json
from collections import Counter
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import click_id_of

#: What every answer is checked for: no 5xx, and a status, a content type
#: and a body the document gives for the operation.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: Cases per operation and mode (fitting the document, or not).
EXAMPLES_PER_OPERATION = 12
SETTINGS = {
    "derandomize": True,
    "database": None,
    "deadline": None,
    "suppress_health_check": list(HealthCheck),
    "phases": (Phase.explicit, Phase.generate, Phase.shrink),
}


@pytest.fixture
def app(make_app):
    # Hundreds of calls with one key: above the default API rate, whose 429
    # would answer every later case instead of the operation.
    return make_app(SMSTRACK_BASE_URL="https://go.example.com", SMSTRACK_RATELIMIT_API="100000 per minute")


@pytest.fixture
def data(app, actions):
    """A campaign with a link, two variants, recipients and a click: ids that
    exist, for the generated ones to meet now and then."""
    key = actions.api_key("admin@example.com", admin=True)
    campaign = actions.campaign(key, message_template="Hi {first_name}: {link}")
    link = actions.link(key, campaign["id"])
    for name in ("A", "B"):
        actions.api("POST", f"/campaigns/{campaign['id']}/variants", key,
                    json={"name": name, "message_template": f"{name}: {{link}}"})
    actions.client.post(
        f"/smstrack/api/v1/campaigns/{campaign['id']}/recipients", content_type="text/csv",
        data="phone,first_name\n+14155550100,Ana\n+14155550101,Ben\n", headers={"Authorization": f"Bearer {key}"},
    )
    click_id = click_id_of(actions.click(link["code"]))
    return {"key": key, "code": link["code"], "click_id": click_id}


def test_every_api_operation_answers_as_documented(app, data, capsys):
    schema = schemathesis.openapi.from_wsgi("/smstrack/api/v1/openapi.json", app)
    auth = {"Authorization": f"Bearer {data['key']}"}
    ran: Counter = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 18
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=EXAMPLES_PER_OPERATION, **SETTINGS)
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case):
                ran[operation.label] += 1
                case.call_and_validate(headers=auth, checks=CHECKS)

            call()
    with capsys.disabled():
        print(f"\nschemathesis: {sum(ran.values())} cases over {len(ran)} API operations")
    assert set(ran) == {op.label for op in operations}


#: Any text: every code point, lone surrogates and NUL included (and
#: offered often, since no database stores them).
_TEXT = st.sampled_from(["\ud800", "A-1\x00", "x\udfffy"]) | st.text(st.characters(exclude_categories=()), max_size=40)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)
_CONTENT_TYPES = st.sampled_from([
    "text/plain", "application/json", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", "application/octet-stream", "",
]) | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


def _beacons(click_id: str):
    """Bodies shaped like the snippet's, with any value in any field."""
    fields = {
        "click_id": st.sampled_from([click_id, "unknown-click"]) | _JSON,
        "event": st.sampled_from(["purchase", "signup"]) | _JSON,
        "revenue": st.sampled_from(["49.90", 10, "1e400", "NaN", -1]) | _JSON,
        "currency": st.sampled_from(["USD", "EUR", "usd"]) | _JSON,
        "order_id": _TEXT | _JSON,
    }
    return st.fixed_dictionaries({"type": st.sampled_from(["landing", "conversion"]) | _JSON}, optional=fields)


def _bodies(click_id: str):
    as_json = (_beacons(click_id) | _JSON).map(lambda value: json.dumps(value).encode())
    return as_json | st.binary(max_size=200) | _TEXT.map(lambda t: t.encode("utf-8", "surrogatepass"))


def test_the_collector_never_fails_on_any_body(app, data, capsys):
    client = app.test_client()
    ran = Counter()

    @settings(max_examples=300, **SETTINGS)
    @given(body=_bodies(data["click_id"]), content_type=_CONTENT_TYPES)
    def post(body, content_type):
        response = client.post("/smstrack/collect", data=body, headers={"Content-Type": content_type})
        ran[response.status_code] += 1
        assert response.status_code < 500, (body, content_type, response.text)

    post()
    with capsys.disabled():
        print(f"\ncollector: {sum(ran.values())} bodies, answered {dict(sorted(ran.items()))}")
    assert ran[202] > 0 and ran[400] > 0


def test_the_redirect_never_fails_on_any_path(app, data, capsys):
    client = app.test_client()
    ran = Counter()
    near = st.sampled_from([data["code"], data["code"] + "\n", "api", "x" * 70]) | st.from_regex(r"[A-Za-z0-9_-]{1,70}")
    paths = near | _TEXT.map(lambda t: quote(t.encode("utf-8", "surrogatepass"), safe="/?&=%#"))

    @settings(max_examples=200, **SETTINGS)
    @given(path=paths)
    def follow(path):
        response = client.get("/s/" + path, headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
        ran[response.status_code] += 1
        assert response.status_code < 500, (path, response.text)

    follow()
    with capsys.disabled():
        print(f"\nredirect: {sum(ran.values())} paths, answered {dict(sorted(ran.items()))}")
    assert ran[302] > 0 and ran[404] > 0
