"""Fixtures: a real database (SQLite, or PostgreSQL with
``FLASK_SMSTRACK_TEST_DATABASE_URL``), the standalone app, a client, a CLI runner,
and helpers that act as a user would.

The schema is created once per test session with the extension's own
migrations; every test starts from empty tables.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from jinja2.bccache import BytecodeCache, Bucket
from sqlalchemy import Engine, create_engine, inspect, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36"
    " (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36"
)
DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"
    " (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)
IMESSAGE_PREVIEW = "facebookexternalhit/1.1 Facebot Twitterbot/1.0"
#: How the tests hash passwords: one round of PBKDF2 instead of scrypt, which
#: is slow on purpose. test_config proves that an app left alone uses scrypt.
PASSWORD_HASH_METHOD = "pbkdf2:sha256:1"
#: The Redis server the tests use (the real one; keys under unique prefixes,
#: never flushed).
REDIS_URL = os.environ.get("FLASK_SMSTRACK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_or_fail():
    """A client of :data:`REDIS_URL`, or the test fails saying what to start."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail(f"No Redis at {REDIS_URL}: start one (.ci/run does) or set FLASK_SMSTRACK_TEST_REDIS_URL.")
    return client


@pytest.fixture(scope="session", autouse=True)
def _no_background_rollups():
    """Apps built in the test process run no periodic jobs on a thread unless a
    test sets ``SMSTRACK_JOB_INTERVAL`` (an app's thread outlives its test and
    would roll up later tests' campaigns in the middle of their GETs)."""
    from flask_smstrack import config

    config.DEFAULTS[config.Keys.JOB_INTERVAL] = 0
    yield


def pytest_collection_modifyitems(config, items):
    """The PostgreSQL pass runs the tests that use a database: the others
    (segment counting, statistics, user agents...) ran in the SQLite pass, as
    did the browser tests of pages and layout (marked ``once``), which the
    database does not change."""
    if not os.environ.get("FLASK_SMSTRACK_TEST_DATABASE_URL"):
        return
    keep = [item for item in items
            if "database_url" in getattr(item, "fixturenames", ()) and item.get_closest_marker("once") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep


def _drop_everything(url: str) -> None:
    """Remove tables left by an earlier run (PostgreSQL keeps them)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        names = inspect(conn).get_table_names()
        if conn.dialect.name == "postgresql":
            for name in names:
                if name.startswith(("smstrack_", "host_")):
                    conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    engine.dispose()


def _worker_database(url: str) -> str:
    """With pytest-xdist, each worker gets a database of its own beside the
    one named (``test`` -> ``test_gw0``, ``test_gw1``...), made if missing."""
    from sqlalchemy.engine import make_url

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    target = make_url(url)
    name = f"{target.database}_{worker}"
    admin = create_engine(target, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return target.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("FLASK_SMSTRACK_TEST_DATABASE_URL")
    if not url:
        return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "smstrack.db")
    url = _worker_database(url)
    _drop_everything(url)
    return url


@pytest.fixture(scope="session")
def migrated(database_url, tmp_path_factory) -> str:
    """The test database with the smstrack tables at the newest revision."""
    from wsgi import create_app, db
    from flask_smstrack.db.migrate import upgrade

    app = create_app(_test_config(database_url, tmp_path_factory.mktemp("instance")))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return database_url


def _test_config(url: str, instance: Path) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": url,
        "SMSTRACK_SPOOL_DIR": str(instance / "spool"),
        # Small segments (one is preallocated per app), replayed when a test
        # says so (tests/test_spool.py turns the background replay on).
        "SMSTRACK_SPOOL_SIZE_BYTES": 1 << 20,
        "SMSTRACK_SPOOL_REPLAY_SECONDS": 0,
        "SMSTRACK_PASSWORD_HASH_METHOD": PASSWORD_HASH_METHOD,
        # Sends do not depend on the hour the tests run at; the quiet hours
        # tests set their own, with a simulated clock.
        "SMSTRACK_QUIET_HOURS": None,
        # No periodic jobs on a thread: tests run them when they mean to.
        "SMSTRACK_JOB_INTERVAL": 0,
    }


def _host_config(instance: Path) -> dict:
    """Config for the shop in ``tests/hostapp``, for its own users and smstrack's."""
    return {
        "TESTING": True,
        "SMSTRACK_SPOOL_DIR": str(instance / "spool"),
        "SMSTRACK_SPOOL_SIZE_BYTES": 1 << 20,
        "SMSTRACK_SPOOL_REPLAY_SECONDS": 0,
        "PASSWORD_HASH_METHOD": PASSWORD_HASH_METHOD,
        "SMSTRACK_PASSWORD_HASH_METHOD": PASSWORD_HASH_METHOD,
        "SMSTRACK_JOB_INTERVAL": 0,
    }


class _CompiledTemplates(BytecodeCache):
    """Templates compiled once per test run: every test builds a new app,
    whose Jinja environment would otherwise compile each page again."""

    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


_TEMPLATES = _CompiledTemplates()


#: One engine per test database for the fixtures' own statements.
_ENGINES: dict[str, Engine] = {}


def _engine(url: str) -> Engine:
    if url not in _ENGINES:
        _ENGINES[url] = create_engine(url)
    return _ENGINES[url]


def pytest_sessionfinish(session):
    for engine in _ENGINES.values():
        engine.dispose()


def _empty_tables(url: str) -> None:
    """Delete every row of the smstrack tables; ids start at 1 again."""
    from flask_smstrack.models import Base

    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with _engine(url).begin() as conn:
        # One round trip counts the rows of each table, up to a thousand.
        counts = dict(conn.execute(text(" UNION ALL ".join(
            f"SELECT '{name}', (SELECT count(*) FROM (SELECT 1 FROM {name} LIMIT 1000) AS head)" for name in tables
        ))).all())
        if conn.dialect.name != "postgresql":
            for name in tables:
                if counts[name]:
                    conn.execute(text(f"DELETE FROM {name}"))
        elif max(counts.values()) >= 1000:
            # After a demo: DELETE would check every foreign key row by row.
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
        else:
            # Cheaper than TRUNCATE on tables this small: delete the rows and
            # restart the sequences that handed out an id (even for a row
            # rolled back).
            for name in tables:
                if counts[name]:
                    conn.execute(text(f"DELETE FROM {name}"))
            sequences = conn.execute(text(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"
                " AND sequencename LIKE 'smstrack%' AND last_value IS NOT NULL"
            )).scalars()
            for name in sequences.all():
                conn.execute(text(f'ALTER SEQUENCE "{name}" RESTART'))


@pytest.fixture
def make_app(migrated, tmp_path):
    """Build standalone apps with extra config; each is torn down after the test."""
    from wsgi import create_app, db

    _empty_tables(migrated)
    apps = []

    def make(**config):
        app = create_app({**_test_config(migrated, tmp_path), **config})
        app.jinja_env.bytecode_cache = _TEMPLATES
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the whole run (see ``tests/e2e/browser.py``)."""
    from e2e.browser import launch

    with launch() as browser:
        yield browser


@pytest.fixture
def browser(chromium):
    """The shared Chromium. Each test opens its own contexts (cookies,
    storage, permissions); whatever it leaves open is closed when it ends."""
    yield chromium
    for context in chromium.contexts:
        context.close()


class Actions:
    """What a user of the product does, in a few calls."""

    def __init__(self, app) -> None:
        self.app = app
        self.client = app.test_client()

    def user(self, email="owner@example.com", password="correct horse", admin=False):
        from flask_smstrack.auth import create_user

        with self.app.app_context():
            return create_user(email, password, is_admin=admin).id

    def api_key(self, email="owner@example.com", admin=False) -> str:
        from flask_smstrack.auth import create_api_key, create_user, find_user

        with self.app.app_context():
            user = find_user(email) or create_user(email, "correct horse", is_admin=admin)
            key, _ = create_api_key(str(user.id), is_admin=user.is_admin)
            return key

    def api(self, method, path, key, json=None, **kw):
        return self.client.open(
            f"/smstrack/api/v1{path}",
            method=method,
            json=json,
            headers={"Authorization": f"Bearer {key}"},
            **kw,
        )

    def campaign(self, key, **fields) -> dict:
        body = {"name": "Spring sale", "currency": "USD", "cost": "10.00", "sent": 100, **fields}
        response = self.api("POST", "/campaigns", key, json=body)
        assert response.status_code == 201, response.json
        return response.json

    def link(self, key, campaign_id, **fields) -> dict:
        body = {"destination_url": "https://shop.example.com/spring?src=sms", **fields}
        response = self.api("POST", f"/campaigns/{campaign_id}/links", key, json=body)
        assert response.status_code == 201, response.json
        return response.json

    def recipients(self, key, campaign_id, csv_text) -> dict:
        response = self.client.post(
            f"/smstrack/api/v1/campaigns/{campaign_id}/recipients", data=csv_text, content_type="text/csv",
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200, response.json
        return response.json

    def click(self, code, ua=IPHONE, ip="81.2.69.160", client=None, **kw):
        client = client or self.client
        return client.get(f"/s/{code}", headers={"User-Agent": ua}, environ_base={"REMOTE_ADDR": ip}, **kw)

    def report(self, key, campaign_id) -> dict:
        response = self.api("GET", f"/campaigns/{campaign_id}/report", key)
        assert response.status_code == 200, response.json
        return response.json

    def collect(self, body, content_type="text/plain", **kw):
        import json

        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return self.client.post("/smstrack/collect", data=data, content_type=content_type, **kw)


@pytest.fixture
def actions(app) -> Actions:
    return Actions(app)


def click_id_of(response, param="smsclid") -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(response.headers["Location"]).query)[param][0]


def send(app, campaign_id, **kw):
    """Sends a campaign as the send job does; the ``SendResult``."""
    from flask_smstrack.models import Campaign
    from flask_smstrack.sms.sending import send_campaign
    from wsgi import db

    with app.app_context():
        return send_campaign(db.session.get(Campaign, campaign_id), **kw)


def recipients_by_phone(app, campaign_id) -> dict:
    """A campaign's recipients, by phone number."""
    from sqlalchemy import select

    from flask_smstrack.models import Recipient
    from wsgi import db

    with app.app_context():
        rows = db.session.execute(select(Recipient).where(Recipient.campaign_id == campaign_id)).scalars()
        return {r.phone: r for r in rows}


def clicked_campaign(actions: Actions, email="shop@example.com") -> dict:
    """A campaign of ``email``, a link, and one click on it: the API key, the
    campaign and the click id."""
    key = actions.api_key(email)
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"])
    return {"key": key, "campaign": campaign, "click_id": click_id_of(actions.click(link["code"]))}


def sale_counts(app) -> tuple[int, int]:
    """How many conversions and refunds are stored."""
    from sqlalchemy import func, select

    from flask_smstrack.models import Conversion, Refund
    from wsgi import db

    with app.app_context():
        return (db.session.scalar(select(func.count()).select_from(Conversion)),
                db.session.scalar(select(func.count()).select_from(Refund)))


def stored_conversions(app) -> list:
    """Every stored conversion, oldest first."""
    from sqlalchemy import select

    from flask_smstrack.models import Conversion
    from wsgi import db

    with app.app_context():
        return db.session.execute(select(Conversion).order_by(Conversion.id)).scalars().all()


#: The public address of the apps made by the ``sms_app`` fixture.
SMS_BASE = "https://sms.example.com"


@pytest.fixture
def sms_app(make_app):
    """An app whose short links are on :data:`SMS_BASE`."""
    return make_app(SMSTRACK_BASE_URL=SMS_BASE)


@pytest.fixture
def sms(sms_app) -> Actions:
    return Actions(sms_app)


@pytest.fixture
def no_twilio_env(monkeypatch):
    """Twilio settings of the machine's environment stay out of the test."""
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_REGION", "TWILIO_EDGE", "SMSTRACK_PROXY_HOPS"):
        monkeypatch.delenv(name, raising=False)
