from pathlib import Path

from flask_smstrack import config

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_key_is_in_the_readme_table():
    missing = [key for key in config.defaults() if f"| `{key}` |" not in README]
    assert missing == []


def test_defaults_are_applied_without_overriding(make_app):
    app = make_app(SMSTRACK_COOKIE_DAYS=7)
    assert app.config["SMSTRACK_COOKIE_DAYS"] == 7
    assert app.config["SMSTRACK_ATTRIBUTION_WINDOW_DAYS"] == 30
