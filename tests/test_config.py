from pathlib import Path

import pytest
from sqlalchemy import select

from conftest import Actions, _empty_tables, _test_config
from flask_smstrack import config
from test_dashboard import PASSWORD, login

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_key_is_in_the_readme_table():
    missing = [key for key in config.defaults() if f"| `{key}` |" not in README]
    assert missing == []


def test_defaults_are_applied_without_overriding(make_app):
    app = make_app(SMSTRACK_COOKIE_DAYS=7)
    assert app.config["SMSTRACK_COOKIE_DAYS"] == 7
    assert app.config["SMSTRACK_ATTRIBUTION_WINDOW_DAYS"] == 30


def test_every_key_is_spelled_once_in_the_package():
    """Code reads keys through config.Keys: no other module spells a key's name
    as a string of its own (docstrings and comments may mention them)."""
    import ast

    package = Path(config.__file__).resolve().parent
    names = set(config.DEFAULTS) | set(config.ENVIRONMENT_ONLY)
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "config.py":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                found += [f"{path.name}:{node.lineno} {n}" for n in names if n in node.value]
    assert found == []


def test_a_typo_in_app_config_warns_with_the_nearest_key(make_app):
    with pytest.warns(config.SmsTrackConfigWarning, match="SMSTRACK_COOKIE_DAY.*Did you mean SMSTRACK_COOKIE_DAYS"):
        app = make_app(SMSTRACK_COOKIE_DAY=7)
    assert app.config["SMSTRACK_COOKIE_DAYS"] == 30


def test_an_environment_only_key_in_app_config_warns(make_app):
    with pytest.warns(config.SmsTrackConfigWarning, match="SMSTRACK_PROXY_HOPS is not read from app.config"):
        make_app(SMSTRACK_PROXY_HOPS=1)


def test_a_typo_in_the_environment_warns_and_is_not_applied(make_app, monkeypatch):
    monkeypatch.setenv("SMSTRACK_TIMEZONE", "Europe/Paris")
    monkeypatch.setenv("SMSTRACK_TIMEZNOE", "Asia/Tokyo")
    monkeypatch.setenv("SMSTRACK_PROXY_HOPS", "0")
    with pytest.warns(config.SmsTrackConfigWarning) as record:
        app = make_app()
    messages = [str(w.message) for w in record]
    assert messages == [
        "Unknown environment variable SMSTRACK_TIMEZNOE: flask-smstrack has no such setting."
        " Did you mean SMSTRACK_TIMEZONE?"
    ]
    assert app.config["SMSTRACK_TIMEZONE"] == "Europe/Paris"
    assert "SMSTRACK_TIMEZNOE" not in app.config


def test_known_keys_do_not_warn(make_app):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_app(SMSTRACK_COOKIE_DAYS=7, SMSTRACK_TIMEZONE="Europe/Paris")


def test_init_app_docstring_lists_every_key():
    from flask_smstrack import SmsTrack

    doc = " ".join(SmsTrack.init_app.__doc__.split())
    missing = [key for key in [*config.DEFAULTS, *config.ENVIRONMENT_ONLY] if f"``{key}``" not in doc]
    assert missing == []


def test_passwords_are_hashed_with_scrypt_by_default(migrated, tmp_path):
    """The other tests hash passwords cheaply; an app that leaves the key
    alone stores scrypt hashes, and its users log in with them."""
    from wsgi import create_app, db

    from flask_smstrack.models import User

    _empty_tables(migrated)
    settings = _test_config(migrated, tmp_path)
    del settings["SMSTRACK_PASSWORD_HASH_METHOD"]
    app = create_app(settings)
    try:
        assert app.config["SMSTRACK_PASSWORD_HASH_METHOD"] == "scrypt"
        Actions(app).user("owner@example.com", PASSWORD)
        with app.app_context():
            stored = db.session.execute(select(User.password_hash)).scalar_one()
        assert stored.startswith("scrypt:")
        assert login(app, "owner@example.com", PASSWORD).get("/smstrack/").status_code == 200
    finally:
        with app.app_context():
            db.engine.dispose()
    # Outside an app, too.
    user = User(email="nobody@example.com")
    user.set_password(PASSWORD)
    assert user.password_hash.startswith("scrypt:") and user.check_password(PASSWORD)
