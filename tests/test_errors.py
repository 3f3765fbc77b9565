"""Public errors: one SmsTrackError family a host app can handle, JSON by
default on the API, the collector and the webhooks, the dashboard's own page
on the dashboard."""
import json

import pytest
from flask import Flask
from flask_wtf.csrf import CSRFProtect

import hostapp
from conftest import _empty_tables
from flask_smstrack import (
    Conflict,
    Forbidden,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    SmsTrackError,
    Unauthorized,
    UnsupportedMediaType,
)


@pytest.fixture
def bare_host(migrated, tmp_path):
    """A host app with its own CSRFProtect and no login of its own."""
    _empty_tables(migrated)
    apps = []

    def make(handler: bool):
        app = Flask(__name__)
        app.config.update(SECRET_KEY="s", SQLALCHEMY_DATABASE_URI=migrated, SMSTRACK_SPOOL_DIR=str(tmp_path))
        hostapp.db.init_app(app)
        hostapp.smstrack.init_app(app)
        CSRFProtect(app)
        if handler:
            @app.errorhandler(SmsTrackError)
            def _smstrack_error(error):
                return {"host": True, "status": error.code, "description": error.description, "fields": error.errors}, error.code
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            hostapp.db.engine.dispose()


@pytest.mark.parametrize(
    "cls, code",
    [(InvalidInput, 400), (Unauthorized, 401), (Forbidden, 403), (NotFound, 404), (MethodNotAllowed, 405),
     (Conflict, 409), (PayloadTooLarge, 413), (UnsupportedMediaType, 415)],
)
def test_each_error_has_its_status_and_a_description(cls, code):
    error = cls({"name": ["Too long."]})
    assert isinstance(error, SmsTrackError)
    assert error.code == code
    assert error.description == "name: Too long."
    assert error.errors == {"name": ["Too long."]}
    assert cls("Plain words.").errors == {"_request": ["Plain words."]}


def test_a_host_handler_catches_every_smstrack_error(bare_host):
    client = bare_host(handler=True).test_client()
    unauthorized = client.get("/smstrack/api/v1/campaigns")
    assert unauthorized.status_code == 401
    assert unauthorized.json["host"] is True
    assert "Authorization" in unauthorized.json["fields"]
    unknown = client.get("/smstrack/api/v1/nothing-here", headers={"Authorization": "Bearer x"})
    assert unknown.status_code == 401  # authentication comes first
    bad = client.post("/smstrack/collect", data="{", content_type="text/plain")
    assert bad.status_code == 400
    assert bad.json["host"] is True and bad.json["status"] == 400
    too_big = client.post("/smstrack/collect", data="x" * 10_000, content_type="text/plain")
    assert (too_big.status_code, too_big.json["status"]) == (413, 413)
    assert too_big.headers["Access-Control-Allow-Origin"] == "*"  # CORS on errors too


def test_without_a_host_handler_errors_are_json(bare_host):
    client = bare_host(handler=False).test_client()
    response = client.post("/smstrack/collect", data=json.dumps({"type": "nope"}), content_type="text/plain")
    assert response.status_code == 400
    assert response.mimetype == "application/json"
    assert "type" in response.json["errors"]
    unauthorized = client.get("/smstrack/api/v1/campaigns")
    assert unauthorized.status_code == 401
    assert unauthorized.headers["WWW-Authenticate"] == 'Bearer realm="smstrack"'
    assert list(unauthorized.json["errors"]) == ["Authorization"]


def test_a_csrf_error_on_the_dashboard_renders_the_dashboards_page(bare_host):
    client = bare_host(handler=False).test_client()
    response = client.post("/smstrack/logout")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert 'class="st-card st-narrow"' in response.text
    assert "CSRF token is missing" in response.text


def test_dashboard_errors_render_the_dashboards_page(make_app):
    from conftest import Actions
    from test_dashboard import PASSWORD, login

    app = make_app()
    Actions(app).user(password=PASSWORD)
    client = login(app)
    response = client.get("/smstrack/campaigns/999")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "There is no campaign 999" in response.text


@pytest.mark.parametrize("path", ["/nope", "/campaigns/x%0Ay/tables/z", "/%0A", "/campaigns/1/tables/a%0Ab/c"])
def test_unknown_api_paths_answer_json(app, path):
    """Any path under the API, even one holding a newline, answers a JSON 404."""
    from conftest import Actions

    key = Actions(app).api_key()
    response = app.test_client().get("/smstrack/api/v1" + path, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 404 and response.mimetype == "application/json", response.text
    assert "errors" in response.json
