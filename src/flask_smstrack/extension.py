"""The :class:`SmsTrack` extension."""
from __future__ import annotations

import os
from decimal import Decimal
from typing import Any, Callable

from flask import Flask, current_app, has_request_context, request
from marshmallow import ValidationError

from . import config
from .config import Keys
from .integrations.stripe import check_installed as check_stripe_installed
from .jobs.periodic import InProcess
from .jobs.queue import Jobs
from .models import Click
from .reports.formatting import FILTERS
from .schemas import ConversionSchema
from .state import LinkCache, State
from .tracking.classify import CountryLookup
from .tracking.conversions import ConversionResult, find_click, record_conversion
from .tracking.hotdb import HotPath
from .tracking.spool import open_spool
from .tracking.tokens import make_token
from .tracking.writer import ClickWriter
from .web.assets import asset_dir
from .web.headers import register as register_security_headers
from .web.limits import setup_limits


class SmsTrack:
    """Tracked SMS links, conversions and ROI reports for a Flask app.

    ::

        db = SQLAlchemy(app)
        smstrack = SmsTrack(app, db=db)

    or with an app factory::

        smstrack = SmsTrack(db=db)

        def create_app():
            app = Flask(__name__)
            db.init_app(app)
            smstrack.init_app(app)
            return app

    :param app: the app to set up now, or ``None`` to call :meth:`init_app` later.
    :param db: the host app's Flask-SQLAlchemy instance. The extension never
        creates a second ``SQLAlchemy()``.
    """

    def __init__(self, app: Flask | None = None, *, db: Any = None) -> None:
        self.db = db
        #: Set with :meth:`access_check`.
        self.access_check_func: Callable[[Any], bool] | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Set up ``app``: config defaults, the click writer, blueprints, CLI,
        login.

        Defaults are applied with ``setdefault``; an ``SMSTRACK_*`` name in
        ``app.config`` that is not a key gives a
        :class:`~flask_smstrack.config.SmsTrackConfigWarning` naming the
        nearest key. Every key it reads is listed below (their meanings and
        defaults are in :mod:`flask_smstrack.config` and the README).
        """
        if "smstrack" in app.extensions:
            raise RuntimeError(
                "SmsTrack is already set up on this app: call init_app(app) once per app."
            )
        db = self.db
        if db is None:
            raise RuntimeError(
                "SmsTrack needs a Flask-SQLAlchemy instance: pass SmsTrack(app, db=db)."
            )
        if "sqlalchemy" not in app.extensions or app.extensions["sqlalchemy"] is not db:
            raise RuntimeError(
                "SmsTrack needs the Flask-SQLAlchemy instance set up on this app first:"
                " call db.init_app(app) before smstrack.init_app(app)."
            )
        for key, value in config.defaults().items():
            app.config.setdefault(key, value)
        config.warn_unknown(app.config)
        self._check_config(app)

        c = app.config
        with app.app_context():
            engine = db.engine
        if c[Keys.SQLITE_WAL]:
            _sqlite_wal(engine, int(c[Keys.SQLITE_WAL_LIMIT_BYTES]))
        options = c.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
        hot = HotPath(
            engine,
            connect_timeout=float(c[Keys.DB_CONNECT_TIMEOUT]),
            statement_timeout=float(c[Keys.DB_STATEMENT_TIMEOUT]),
            connect_args=options.get("connect_args"),
        )
        app.extensions["smstrack"] = State(
            db=db,
            links=LinkCache(c[Keys.LINK_CACHE_SIZE], c[Keys.LINK_CACHE_TTL]),
            country=CountryLookup(c[Keys.COUNTRY_HEADER], c[Keys.GEOIP_DB]),
            spool_dir=c[Keys.SPOOL_DIR] or os.path.join(app.instance_path, "smstrack-spool"),
            click_writer=ClickWriter(
                engine, sync_commit=c[Keys.CLICK_SYNC_COMMIT], wal_limit=int(c[Keys.SQLITE_WAL_LIMIT_BYTES]),
                hot=hot,
            ),
            ext=self,
            jobs=Jobs(app),
            periodic=InProcess(app),
            hot=hot,
        )
        if app.extensions["smstrack"].periodic.enabled:
            app.before_request(app.extensions["smstrack"].periodic.ensure_started)
        open_spool(app)

        self._register_blueprints(app)
        self._exempt_from_csrf(app)
        setup_limits(app)
        from .cli import smstrack_cli

        app.cli.add_command(smstrack_cli)
        if app.config[Keys.BUILTIN_USERS] and getattr(app, "login_manager", None) is None:
            # Whether it stays on is decided per request (State.builtin_login):
            # a LoginManager the host sets up after this replaces it.
            app.extensions["smstrack"].builtin_manager = _builtin_login(app)

    @staticmethod
    def _check_config(app: Flask) -> None:
        c = app.config
        if c[Keys.ATTRIBUTION_MODEL] not in ("last", "first"):
            raise RuntimeError(f"{Keys.ATTRIBUTION_MODEL} must be 'last' or 'first'.")
        if int(c[Keys.CODE_LENGTH]) < 7:
            raise RuntimeError(f"{Keys.CODE_LENGTH} must be at least 7 so codes cannot be guessed.")
        for key in (Keys.LINK_PREFIX, Keys.URL_PREFIX):
            if not str(c[key]).startswith("/"):
                raise RuntimeError(f"{key} must start with '/', for example '/s'.")
        try:
            Decimal(str(c[Keys.MAX_REVENUE]))
        except ArithmeticError:
            raise RuntimeError(f"{Keys.MAX_REVENUE} must be a number, for example '1000000'.") from None
        for key in (Keys.DB_CONNECT_TIMEOUT, Keys.DB_STATEMENT_TIMEOUT):
            value = c[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 60:
                raise RuntimeError(
                    f"{key} is {value!r}: it must be a number of seconds above 0 and at most 60, for example 0.5."
                )
        limit = c[Keys.SQLITE_WAL_LIMIT_BYTES]
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1024 * 1024:
            raise RuntimeError(
                f"{Keys.SQLITE_WAL_LIMIT_BYTES} is {limit!r}: it must be a whole number of bytes,"
                " at least 1048576 (1 MiB), for example 67108864 (64 MiB)."
            )
        if c[Keys.STRIPE_WEBHOOK_SECRET]:
            check_stripe_installed()
        if c[Keys.GEOIP_DB] and not os.path.isfile(c[Keys.GEOIP_DB]):
            raise RuntimeError(
                f"{Keys.GEOIP_DB} is {c[Keys.GEOIP_DB]!r}, which is not a file:"
                " point it at a MaxMind-format .mmdb, or unset it to use the built-in table."
            )

    @staticmethod
    def _register_blueprints(app: Flask) -> None:
        from flask import Blueprint

        from .web.api import bp as api_bp
        from .web.collect import bp as collect_bp
        from .web.dashboard import bp as dashboard_bp
        from .web.health import bp as health_bp
        from .web.redirect import bp as redirect_bp
        from .web.webhooks import bp as webhooks_bp
        from .web.webhooks_shop import bp as shop_webhooks_bp

        prefix = app.config[Keys.URL_PREFIX].rstrip("/")
        # Templates and static files, overridable by the host's own
        # templates/smstrack/... files.
        assets = Blueprint(
            "smstrack",
            __name__,
            template_folder=str(asset_dir("templates")),
            static_folder=str(asset_dir("static") / "smstrack"),
            static_url_path="/static",
        )
        for name, f in FILTERS.items():
            assets.add_app_template_filter(f, name)
        app.register_blueprint(assets, url_prefix=prefix)
        app.register_blueprint(redirect_bp, url_prefix=app.config[Keys.LINK_PREFIX].rstrip("/"))
        if app.config[Keys.FAST_REDIRECT]:
            from .web.fast_redirect import install

            install(app, app.config[Keys.LINK_PREFIX])
        app.register_blueprint(collect_bp, url_prefix=prefix)
        app.register_blueprint(api_bp, url_prefix=f"{prefix}/api/v1")
        app.register_blueprint(dashboard_bp, url_prefix=prefix)
        app.register_blueprint(webhooks_bp, url_prefix=prefix)
        app.register_blueprint(shop_webhooks_bp, url_prefix=prefix)
        app.register_blueprint(health_bp, url_prefix=prefix)
        register_security_headers(app)

    @staticmethod
    def _exempt_from_csrf(app: Flask) -> None:
        """Exempt the collector, the API and the providers' webhooks from
        Flask-WTF's CSRFProtect.

        Beacons carry no token, API keys are not sent by browsers on their
        own, and webhooks are signed by their provider; API calls made with a
        session cookie are checked for a token by the API itself.
        ``CSRFProtect`` may be set up before or after this extension, so the
        exemption is also made on the first request to those blueprints:
        their URL value preprocessors run before any ``before_request``
        hook, CSRFProtect's included, and other requests (the tracked
        redirect above all) pay nothing.
        """
        from .web.api import bp as api_bp
        from .web.collect import bp as collect_bp
        from .web.webhooks import bp as webhooks_bp
        from .web.webhooks_shop import bp as shop_webhooks_bp

        def exempt(*_args) -> None:
            csrf = app.extensions.get("csrf")
            state = app.extensions["smstrack"]
            if csrf is None or state.csrf_exempted is csrf:
                return
            csrf.exempt("flask_smstrack.web.collect.collect")
            csrf.exempt(api_bp)
            csrf.exempt(webhooks_bp)
            csrf.exempt(shop_webhooks_bp)
            state.csrf_exempted = csrf

        exempt()
        for bp in (api_bp, collect_bp, webhooks_bp, shop_webhooks_bp):
            app.url_value_preprocessors.setdefault(bp.name, []).append(exempt)

    def access_check(self, f: Callable[[Any], bool]) -> Callable[[Any], bool]:
        """Register the function that decides whether a logged-in user of the
        host app may use the dashboard and API::

            @smstrack.access_check
            def may_see_smstrack(user):
                return user.is_staff
        """
        self.access_check_func = f
        return f

    # -- Python API for host apps ------------------------------------------

    def current_click(self) -> Click | None:
        """The click the current visitor came from, within the attribution
        window: from the click id in the URL, the snippet's cookie or the
        redirect's cookie, in that order."""
        for value in _click_ids_of_request():
            click = find_click(value)
            if click is not None:
                return click
        return None

    def record_conversion(
        self,
        *,
        event: str = "purchase",
        revenue: Decimal | str | int | None = None,
        currency: str | None = None,
        order_id: str | None = None,
        click_id: str | None = None,
        owner_id: str | None = None,
    ) -> ConversionResult:
        """Record a verified conversion from the host's own code, such as its
        checkout view. Without ``click_id`` the current visitor's click is
        used (see :meth:`current_click`). ``owner_id`` owns the conversion
        when no click is found (an attributed one is its campaign owner's).

        Replaying an ``order_id`` changes nothing; for an order id that a
        browser reported first (unverified), this verified record replaces
        it. Raises :class:`marshmallow.ValidationError` on bad input.

        The conversion is written and committed in a database transaction of
        its own before this returns. Your ``db.session`` is left alone:
        nothing in it is flushed, committed or rolled back, whether the
        order id is new or a replay. (On SQLite, which has one writer at a
        time, call it before flushing your own changes or after committing
        them: otherwise it waits for your transaction to end.)
        """
        data = _conversion_fields(event, revenue, currency, order_id)
        data["click_id"] = click_id
        loaded = ConversionSchema().load({k: v for k, v in data.items() if v is not None})
        fallback = _click_ids_of_request() if click_id is None else ()
        return record_conversion(
            loaded, source="server", trust="verified", owner_id=owner_id, fallback_click_ids=fallback
        )

    def conversion_token(
        self,
        *,
        order_id: str,
        revenue: Decimal | str | int | None = None,
        currency: str | None = None,
        event: str = "purchase",
    ) -> str:
        """A short signed token for the thank-you page of ``order_id``: the
        page passes it along with the same fields, ``smstrack('conversion',
        {event, order_id, revenue, currency, token})``, and the collector
        stores the conversion verified. It expires after
        ``SMSTRACK_CONVERSION_TOKEN_TTL`` seconds and is signed with
        ``SMSTRACK_SIGNING_KEY`` (or ``SECRET_KEY``). Raises
        :class:`marshmallow.ValidationError` on bad input.
        """
        data = _conversion_fields(event, revenue, currency, order_id)
        loaded = ConversionSchema().load({k: v for k, v in data.items() if v is not None})
        if not loaded.get("order_id"):
            raise ValidationError({"order_id": ["A conversion token needs an order id."]})
        return make_token(loaded).token


def _conversion_fields(event, revenue, currency, order_id) -> dict[str, Any]:
    if isinstance(revenue, float):
        raise ValidationError({"revenue": ["Pass a Decimal or a string, not a float."]})
    return {"event": event, "revenue": revenue, "currency": currency, "order_id": order_id}


def _click_ids_of_request() -> list[str]:
    """The click ids the current request carries, best first: the URL's,
    the snippet's cookie, the redirect's cookie."""
    if not has_request_context():
        return []
    c = current_app.config
    values = (
        request.args.get(c[Keys.CLICK_PARAM]),
        request.cookies.get(c[Keys.SNIPPET_COOKIE_NAME]),
        request.cookies.get(c[Keys.COOKIE_NAME]),
    )
    return [v for v in values if v]


SmsTrack.init_app.__doc__ = (SmsTrack.init_app.__doc__ or "") + config.keys_doc("        ")

def _sqlite_wal(engine, wal_limit: int) -> None:
    """WAL lets readers and the click writer work at once; NORMAL sync is
    safe in WAL mode and keeps a commit cheap. ``journal_size_limit`` cuts
    the log back to ``wal_limit`` bytes whenever SQLite starts it over (the
    click writer's checkpointer sees that it does)."""
    from sqlalchemy import event

    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute(f"PRAGMA journal_size_limit={int(wal_limit)}")
        cursor.close()


def _builtin_login(app: Flask) -> Any:
    """Flask-Login for the built-in users, when the host has none."""
    from flask_login import LoginManager

    from .auth import load_session_user

    manager = LoginManager()
    manager.init_app(app)
    manager.login_view = "smstrack_dashboard.login"
    manager.user_loader(load_session_user)
    return manager
