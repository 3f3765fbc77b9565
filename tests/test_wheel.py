"""The wheel, as a user gets it: built from this tree, installed with pip
into a new virtual environment, and used from a directory outside the repo
by a host app of its own (``SmsTrack(app, db=db)``), with the installed
``flask smstrack`` CLI and gunicorn. Proves the snippet, the templates and
the migrations ship inside the package.

pip fetches the dependencies from PyPI (about a minute on a cold cache); the
app itself only ever listens on and talks to 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import IPHONE
from e2e.support import HOST, ROOT, Cli, clean_env, fetch, free_port, gunicorn, report
from flask_smstrack.web.snippet import minify

PACKAGE_FILES = [
    "flask_smstrack/__init__.py",
    "flask_smstrack/py.typed",
    "flask_smstrack/static/smstrack/t.js",
    "flask_smstrack/templates/smstrack/404.html",
    "flask_smstrack/templates/smstrack/base.html",
    "flask_smstrack/db/migrations/env.py",
    "flask_smstrack/db/migrations/script.py.mako",
] + sorted(
    f"flask_smstrack/db/migrations/versions/{p.name}"
    for p in (ROOT / "src" / "flask_smstrack" / "db" / "migrations" / "versions").glob("*.py")
)

HOST_APP = """\
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_smstrack import SmsTrack

app = Flask(__name__)
app.config.update(
    SECRET_KEY="wheel-test-secret",
    SQLALCHEMY_DATABASE_URI={database_url!r},
    SMSTRACK_BASE_URL={base_url!r},
    SMSTRACK_SPOOL_DIR={spool_dir!r},
)
db = SQLAlchemy(app)
smstrack = SmsTrack(app, db=db)


@app.get("/")
def home():
    return "The shop"
"""


def _run(*command, **kwargs) -> str:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command} exited with {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture
def database(tmp_path) -> str:
    """A new SQLite file, so that ``init-db`` runs the packaged migrations
    from nothing. The package is the same whatever the database: it is
    checked once, in the SQLite pass (the host app on PostgreSQL is
    test_extension's)."""
    if os.environ.get("FLASK_SMSTRACK_TEST_DATABASE_URL"):
        pytest.skip("the wheel is checked in the SQLite pass")
    return "sqlite:///" + str(tmp_path / "shop.db")


def test_wheel_in_a_clean_virtualenv(tmp_path, database):
    # Build the wheel and look inside it.
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--wheel", "--outdir", dist, ROOT, cwd=tmp_path, timeout=300)
    (wheel,) = dist.glob("flask_smstrack-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert [f for f in PACKAGE_FILES if f not in names] == []
    assert not any(n.startswith(("tests/", "static/", "templates/", "wsgi")) for n in names), sorted(names)

    # Install it into a new virtualenv, from PyPI for the dependencies, with
    # this environment's pip: the new one needs no pip of its own. Nothing is
    # byte-compiled ahead of time; the processes below compile and keep the
    # modules they import.
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, timeout=120)
    bin_dir = venv / "bin"
    env = clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    extra = "[postgres]" if database.startswith("postgresql") else ""
    _run(sys.executable, "-m", "pip", "--python", bin_dir / "python", "install", "--disable-pip-version-check",
         "--no-compile", "-q", f"{wheel}{extra}", cwd=tmp_path, env=env, timeout=600)

    # A host app in a directory that is not the repo.
    app_dir = tmp_path / "shop"
    app_dir.mkdir()
    port = free_port()
    base_url = f"http://{HOST}:{port}"
    spool_dir = tmp_path / "spool"
    (app_dir / "shop.py").write_text(
        HOST_APP.format(database_url=database, base_url=base_url, spool_dir=str(spool_dir)), encoding="utf-8"
    )

    # The package, its assets and its migrations come from the new venv.
    where = json.loads(_run(
        bin_dir / "python", "-c",
        "import json, sysconfig, flask_smstrack, flask_smstrack.web.assets as p;"
        " print(json.dumps([sysconfig.get_paths()['purelib'], flask_smstrack.__file__, str(p.SNIPPET_PATH)]))",
        cwd=app_dir, env=env,
    ))
    site_packages = Path(where[0])
    assert site_packages.is_relative_to(venv)
    assert Path(where[1]) == site_packages / "flask_smstrack" / "__init__.py"
    installed_snippet = site_packages / "flask_smstrack" / "static" / "smstrack" / "t.js"
    assert Path(where[2]) == installed_snippet
    assert [f for f in PACKAGE_FILES if not (site_packages / f).is_file()] == []

    # Set it up with the installed CLI.
    cli = Cli(bin_dir / "flask", "shop", cwd=app_dir, env=env)
    migrated = cli("init-db")
    if database.startswith("sqlite"):
        assert migrated.startswith("Database upgraded from empty to ")
    else:
        assert migrated.startswith(("Database is up to date", "Database upgraded"))
    key = cli.user_with_key("owner@shop.example")
    campaign_id, short_url = cli.campaign_with_link("owner@shop.example", "https://shop.example/spring", "wheel-spring")
    assert short_url == f"{base_url}/s/wheel-spring"

    with gunicorn(bin_dir / "gunicorn", "shop:app", port=port, cwd=app_dir, env=env,
                  log=tmp_path / "gunicorn.log", ready_path="/"):
        snippet = fetch(f"{base_url}/smstrack/t.js")
        assert snippet.status == 200
        assert snippet.headers["Content-Type"].startswith("text/javascript")
        # Served minified; the installed file keeps the readable source.
        assert snippet.body == minify(installed_snippet.read_text(encoding="utf-8"))
        assert len(snippet.body) < installed_snippet.stat().st_size
        etag = snippet.headers["ETag"]
        assert etag
        again = fetch(f"{base_url}/smstrack/t.js", headers={"If-None-Match": etag})
        assert (again.status, again.body) == (304, b"")

        missing = fetch(f"{base_url}/s/no-such-link")
        assert missing.status == 404
        assert b"This link does not exist" in missing.body

        click = fetch(short_url, headers={"User-Agent": IPHONE})
        assert click.status == 302
        location = urlsplit(click.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == "https://shop.example/spring"
        (click_id,) = parse_qs(location.query)["smsclid"]
        assert click.headers["Set-Cookie"].startswith(f"smsclid={click_id};")

        numbers = report(base_url, key, campaign_id)
        assert (numbers["clicks"], numbers["unique_clicks"], numbers["previews"]) == (1, 1, 0)

    assert json.loads(cli("report", str(campaign_id)))["clicks"] == 1
    from flask_smstrack.tracking.spool import waiting_records

    assert waiting_records(str(spool_dir)) == 0  # its preallocated segment holds nothing

    # The standalone app ships in the package too: gunicorn flask_smstrack.standalone:app.
    instance = tmp_path / "standalone-instance"
    standalone_env = dict(env, SMSTRACK_INSTANCE_PATH=str(instance))
    standalone = Cli(bin_dir / "flask", "flask_smstrack.standalone", cwd=app_dir, env=standalone_env)
    assert standalone("init-db").startswith("Database upgraded from empty to ")
    assert (instance / "smstrack.db").is_file() and (instance / "secret_key").is_file()
    port = free_port()
    with gunicorn(bin_dir / "gunicorn", "flask_smstrack.standalone:app", port=port, cwd=app_dir,
                  env=standalone_env, log=tmp_path / "standalone.log", ready_path="/smstrack/t.js"):
        assert fetch(f"http://{HOST}:{port}/smstrack/login").status == 200
