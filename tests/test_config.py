from pathlib import Path

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
