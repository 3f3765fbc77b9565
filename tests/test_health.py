"""``GET /smstrack/healthz``, ``flask smstrack status`` and the standalone
app's refusal to run on a shared database without ``SECRET_KEY``."""
from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from e2e.support import clean_env, free_port

ROOT = Path(__file__).resolve().parents[1]


def _closed_pg_url() -> str:
    """A PostgreSQL URL on a port where nothing listens."""
    return f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing?connect_timeout=1"


def _spool(app, count: int, pid: int) -> None:
    """``count`` clicks spooled by process ``pid``, as the redirect spools them."""
    from flask_smstrack.tracking.spool import spool_click

    spool_dir = app.extensions["smstrack"].spool_dir
    path = os.path.join(spool_dir, f"clicks-{pid}.jsonl")
    for i in range(count):
        row = {"click_id": f"spooled-{pid}-{i}", "campaign_id": 1, "link_id": 1,
               "created_at": dt.datetime(2026, 11, 30, 12, 0, i % 60)}
        spool_click(spool_dir, row)
    # spool_click names the file after this process: give it the other pid.
    os.rename(os.path.join(spool_dir, f"clicks-{os.getpid()}.jsonl"), path)


def _counts(url: str) -> dict[str, int]:
    from flask_smstrack.models import Base

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t.name: conn.execute(text(f"SELECT count(*) FROM {t.name}")).scalar()
                    for t in Base.metadata.sorted_tables}
    finally:
        engine.dispose()


def test_healthy(app, client, database_url):
    response = client.get("/smstrack/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "checks": {
        "database": {"status": "ok"},
        "redis": {"status": "not configured"},
        "spool": {"status": "ok", "files": 0, "records": 0},
        "jobs": {"status": "not configured"},
        "breaker": {"status": "ok", "failures": 0, "opened": 0, "connect_timeout_s": 0.5, "statement_timeout_s": 0.5},
    }}
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    assert client.head("/smstrack/healthz").status_code == 200


def test_healthy_with_redis(make_app):
    app = make_app(SMSTRACK_RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379")
    response = app.test_client().get("/smstrack/healthz")
    assert response.status_code == 200, response.json
    assert response.json["checks"]["redis"] == {"status": "ok"}


def test_database_down(make_app):
    app = make_app(SQLALCHEMY_DATABASE_URI=_closed_pg_url())
    start = time.monotonic()
    response = app.test_client().get("/smstrack/healthz")
    assert time.monotonic() - start < 5
    assert response.status_code == 503
    body = response.json
    assert body["status"] == "failing"
    assert body["failing"] == ["database"]
    assert body["checks"]["database"]["status"] == "failing"
    assert "SELECT 1" in body["checks"]["database"]["message"]
    assert body["checks"]["spool"]["status"] == "ok"
    # Nothing about where the database is.
    assert "127.0.0.1" not in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"


def test_database_hung(make_app):
    """A server that takes the connection and never answers (as one stopped
    with SIGSTOP does) fails the check within the connect timeout."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        port = hung.getsockname()[1]
        app = make_app(SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://postgres@127.0.0.1:{port}/nothing")
        start = time.monotonic()
        response = app.test_client().get("/smstrack/healthz")
        took = time.monotonic() - start
    assert response.status_code == 503
    assert response.json["failing"] == ["database"]
    assert 1.5 < took < 5


def test_redis_down(make_app):
    port = free_port()
    app = make_app(SMSTRACK_RATELIMIT_STORAGE_URI=f"redis://:hunter2@127.0.0.1:{port}/0")
    start = time.monotonic()
    response = app.test_client().get("/smstrack/healthz")
    assert time.monotonic() - start < 5
    assert response.status_code == 503
    body = response.json
    assert body["failing"] == ["redis"]
    assert body["checks"]["database"] == {"status": "ok"}
    assert "SMSTRACK_RATELIMIT_STORAGE_URI" in body["checks"]["redis"]["message"]
    text_body = response.get_data(as_text=True)
    assert "hunter2" not in text_body and str(port) not in text_body


def test_redis_hung(make_app):
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        app = make_app(SMSTRACK_RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{hung.getsockname()[1]}")
        start = time.monotonic()
        response = app.test_client().get("/smstrack/healthz")
        took = time.monotonic() - start
    assert response.status_code == 503
    assert response.json["failing"] == ["redis"]
    assert took < 3


def test_memory_rate_limits_are_not_redis(make_app):
    app = make_app(SMSTRACK_RATELIMIT_STORAGE_URI="memory://")
    assert app.test_client().get("/smstrack/healthz").json["checks"]["redis"] == {"status": "not configured"}


def test_spool_backlog_counted(app, client):
    _spool(app, 3, 101)
    _spool(app, 5, 102)
    assert client.get("/smstrack/healthz").json["checks"]["spool"] == {"status": "ok", "files": 2, "records": 8}
    # More clicks appended to one file, then a file replayed (gone).
    _spool(app, 2, 101)  # replaces clicks-101 with 2 records
    spool_dir = app.extensions["smstrack"].spool_dir
    from flask_smstrack.tracking.spool import spool_click

    spool_click(spool_dir, {"click_id": "late", "campaign_id": 1, "link_id": 1, "created_at": dt.datetime(2026, 12, 1)})
    response = client.get("/smstrack/healthz")
    assert response.status_code == 200
    assert response.json["checks"]["spool"] == {"status": "ok", "files": 3, "records": 8}
    os.remove(os.path.join(spool_dir, "clicks-102.jsonl"))
    assert client.get("/smstrack/healthz").json["checks"]["spool"] == {"status": "ok", "files": 2, "records": 3}


def test_unwritable_spool_fails(make_app, tmp_path):
    # A spool directory that cannot be made: its parent is a file.
    (tmp_path / "not-a-dir").write_text("x")
    app = make_app(SMSTRACK_SPOOL_DIR=str(tmp_path / "not-a-dir" / "spool"))
    response = app.test_client().get("/smstrack/healthz")
    assert response.status_code == 503
    assert response.json["failing"] == ["spool"]
    assert "SMSTRACK_SPOOL_DIR" in response.json["checks"]["spool"]["message"]
    result = app.test_cli_runner().invoke(args=["smstrack", "status"])
    assert result.exit_code == 1, result.output


def test_changes_nothing(actions, app, client, migrated):
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"])
    assert actions.click(link["code"]).status_code == 302
    _spool(app, 4, 103)
    spool_dir = app.extensions["smstrack"].spool_dir
    before = _counts(migrated)
    files = {p: Path(spool_dir, p).read_bytes() for p in os.listdir(spool_dir)}
    instance = sorted(os.listdir(app.instance_path))
    for _ in range(3):
        response = client.get("/smstrack/healthz")
        assert response.status_code == 200
        assert "Set-Cookie" not in response.headers
    assert _counts(migrated) == before
    assert before["smstrack_clicks"] == 1
    assert {p: Path(spool_dir, p).read_bytes() for p in os.listdir(spool_dir)} == files
    assert sorted(os.listdir(app.instance_path)) == instance


def test_never_rate_limited(make_app):
    app = make_app(SMSTRACK_RATELIMIT_API="2 per minute", SMSTRACK_RATELIMIT_COLLECT="2 per minute")
    client = app.test_client()
    assert [client.get("/smstrack/healthz").status_code for _ in range(20)] == [200] * 20


def test_status_healthy(actions, runner):
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"])
    actions.link(key, campaign["id"])
    assert actions.click(link["code"]).status_code == 302
    result = runner.invoke(args=["smstrack", "status"])
    assert result.exit_code == 0, result.output
    lines = _rows(result.output)
    assert lines["database"].split()[1] == "ok"
    assert lines["redis"].split()[1:3] == ["not", "configured"]
    assert "0 records in 0 files waiting" in lines["spool"]
    assert "(newest)" in lines["migrations"]
    assert lines["campaigns"].split() == ["campaigns", "1"]
    assert lines["links"].split() == ["links", "2"]
    assert lines["clicks"].split() == ["clicks", "1"]
    assert lines["CHECK"].split() == ["CHECK", "RESULT"]
    assert lines["version"].split()[1] == "0.1.0"
    kind = create_engine(runner.app.config["SQLALCHEMY_DATABASE_URI"]).dialect.name
    assert result.output.splitlines()[-1].split() == ["status", "ok"]
    assert f"database kind  {kind} (" in result.output


def test_status_spool_backlog(app, runner):
    _spool(app, 7, 104)
    result = runner.invoke(args=["smstrack", "status"])
    assert result.exit_code == 0, result.output
    assert "7 records in 1 files waiting" in result.output


def test_status_database_down(make_app):
    app = make_app(SQLALCHEMY_DATABASE_URI=_closed_pg_url())
    result = app.test_cli_runner().invoke(args=["smstrack", "status"])
    assert result.exit_code == 1, result.output
    lines = _rows(result.output)
    assert lines["database"].split()[1] == "failing"
    assert "unknown" in lines["migrations"] and lines["clicks"].split() == ["clicks", "unknown"]
    assert result.output.splitlines()[-1].split() == ["status", "FAILING"]


def test_status_redis_down(make_app):
    app = make_app(SMSTRACK_RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}")
    result = app.test_cli_runner().invoke(args=["smstrack", "status"])
    assert result.exit_code == 1, result.output
    lines = _rows(result.output)
    assert lines["redis"].split()[1] == "failing"
    assert lines["database"].split()[1] == "ok"


def _rows(output: str) -> dict[str, str]:
    """The status table's lines by their first column."""
    return {re.split(r"\s{2,}", line)[0]: line for line in output.splitlines()}


def _start(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Import ``wsgi`` (what ``gunicorn wsgi:app`` does) in a new process."""
    return subprocess.run([sys.executable, "-c", "import wsgi; print('started', wsgi.app.secret_key is not None)"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_standalone_refuses_postgres_without_secret_key(tmp_path):
    done = _start(clean_env(DATABASE_URL=_closed_pg_url(), SMSTRACK_INSTANCE_PATH=str(tmp_path)))
    assert done.returncode != 0
    assert "started" not in done.stdout
    assert "SECRET_KEY is not set, and DATABASE_URL is not SQLite" in done.stderr
    assert "Set the same SECRET_KEY in the environment of every node" in done.stderr
    assert "secrets.token_urlsafe" in done.stderr
    assert not (tmp_path / "secret_key").exists()


def test_standalone_on_postgres_with_secret_key(tmp_path):
    done = _start(clean_env(DATABASE_URL=_closed_pg_url(), SECRET_KEY="shared", SMSTRACK_INSTANCE_PATH=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "started True"
    assert not (tmp_path / "secret_key").exists()


def test_standalone_on_sqlite_keeps_its_own_key(tmp_path):
    env = clean_env(SMSTRACK_INSTANCE_PATH=str(tmp_path))
    done = _start(env)
    assert done.returncode == 0, done.stderr
    key = (tmp_path / "secret_key").read_text()
    assert len(key) > 40
    assert _start(env).returncode == 0
    assert (tmp_path / "secret_key").read_text() == key


def test_status_not_migrated(make_app, tmp_path):
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'empty.db'}")
    result = app.test_cli_runner().invoke(args=["smstrack", "status"])
    assert result.exit_code == 1, result.output
    lines = _rows(result.output)
    assert lines["database"].split()[1] == "ok"
    assert "run: flask smstrack init-db" in lines["migrations"] and lines["migrations"].split()[1] == "empty,"
    assert result.output.splitlines()[-1].split() == ["status", "FAILING"]
