"""The standalone flask-smstrack app.

From a checkout, ``gunicorn wsgi:app``; from an installed package,
``gunicorn flask_smstrack.standalone:app``. The instance folder (SQLite
database, secret key, click spool) is ``instance/`` beside ``wsgi.py``, or
``$SMSTRACK_INSTANCE_PATH`` when set.

Configured from the environment:

- ``DATABASE_URL``: SQLAlchemy URL; default a SQLite file in the instance
  folder. ``postgres://`` and ``postgresql://`` URLs use psycopg 3.
- ``SECRET_KEY``: signs sessions. Required on PostgreSQL (or any database
  other than SQLite), where several nodes may share the database: each
  would otherwise make its own key, and a session from one node would be
  logged out on the next. On SQLite a random key is made (and kept in the
  instance folder) when unset.
- ``SMSTRACK_*``: any key of the config table, e.g. ``SMSTRACK_BASE_URL``.
  Numbers, ``true``/``false`` and JSON lists are understood; a name that
  is not a key gives a warning naming the nearest one.
- ``SMSTRACK_PROXY_HOPS``: how many proxies stand in front (ProxyFix), 0 for none.
"""
from __future__ import annotations

import gc
import json
import os
import secrets

from flask import Flask, has_request_context, redirect, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_sqlalchemy import SQLAlchemy
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import DEFAULTS, Keys, warn_unknown
from .extension import SmsTrack

db = SQLAlchemy()
smstrack = SmsTrack(db=db)


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without building the signer for
    requests that carry no session cookie: tracked redirects, beacons and
    API calls never do. The cookie is ``Secure`` when the request came over
    https (or always, with ``SESSION_COOKIE_SECURE``)."""

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or (has_request_context() and request.is_secure))

    def open_session(self, app, request):
        if "HTTP_COOKIE" not in request.environ or self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app, session, response):
        if session or session.modified:
            return super().save_session(app, session, response)
        # Nothing to store: only say that the answer depended on cookies.
        if session.accessed:
            if "Vary" in response.headers:
                response.vary.add("Cookie")
            else:
                response.headers["Vary"] = "Cookie"


def _env_value(raw: str):
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _database_url(app: Flask) -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        return "sqlite:///" + os.path.join(app.instance_path, "smstrack.db")
    for old in ("postgres://", "postgresql://"):
        if url.startswith(old):
            return "postgresql+psycopg://" + url[len(old):]
    return url


def _secret_key(app: Flask) -> str:
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    path = os.path.join(app.instance_path, "secret_key")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(key)
        return key


class SecretKeyMissing(RuntimeError):
    """The standalone app runs on a shared database without ``SECRET_KEY``."""


def _require_shared_key(url: str) -> None:
    """Refuse a database server without ``SECRET_KEY``: every node on it
    must sign sessions with the same key."""
    if str(url).startswith("sqlite"):
        return
    raise SecretKeyMissing(
        "SECRET_KEY is not set, and DATABASE_URL is not SQLite: several nodes may serve this database,"
        " and each would make its own secret key, so a session signed on one node would be logged out"
        " on the next. Set the same SECRET_KEY in the environment of every node, for example one made with:"
        " python -c 'import secrets; print(secrets.token_urlsafe(48))'"
    )


def create_app(config: dict | None = None, import_name: str = __name__) -> Flask:
    """Build the standalone app from the environment, then ``config``."""
    app = Flask(
        import_name,
        instance_relative_config=True,
        instance_path=os.environ.get(Keys.INSTANCE_PATH) or None,
    )
    os.makedirs(app.instance_path, exist_ok=True)
    app.config["SQLALCHEMY_DATABASE_URI"] = _database_url(app)
    # The session cookie is HttpOnly (Flask's default) and not sent by
    # cross-site subrequests or posts.
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # The standalone app has no request hooks of its own for the redirect to skip.
    app.config[Keys.FAST_REDIRECT] = True
    warn_unknown(os.environ, environment=True)
    for key, raw in os.environ.items():
        if key in DEFAULTS:
            app.config[key] = _env_value(raw)
    app.config.update(config or {})
    # A pooled connection is tested before use, so that the dashboard and
    # API answer normally right after the database restarted.
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    options.setdefault("pool_pre_ping", True)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    if not app.config.get("SECRET_KEY"):
        if not os.environ.get("SECRET_KEY"):
            _require_shared_key(app.config["SQLALCHEMY_DATABASE_URI"])
        app.config["SECRET_KEY"] = _secret_key(app)
    app.session_interface = _SessionInterface()
    hops = int(os.environ.get(Keys.PROXY_HOPS, "0"))
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)

    db.init_app(app)
    smstrack.init_app(app)

    @app.get("/")
    def home():
        return redirect(url_for("smstrack_dashboard.index"))

    return app


def __getattr__(name: str):
    # ``gunicorn flask_smstrack.standalone:app`` builds the app on first use,
    # so that importing this module for create_app() has no side effects.
    if name == "app":
        global app
        app = create_app()
        gc.freeze()
        return app
    raise AttributeError(name)
