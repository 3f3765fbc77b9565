"""A small shop that mounts flask-smstrack the way a developer would.

It has its own Flask-SQLAlchemy ``db`` and models (tables ``host_*``), its
own Flask-Login users and login view, Flask-WTF's ``CSRFProtect`` on every
view, and a checkout that reports purchases to smstrack from server code.
The smstrack tables are not part of the host's metadata: they come from
``flask_smstrack.db.migrate.upgrade()``.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, redirect, render_template_string, request, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import ForeignKey, Numeric, String, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response

from flask_smstrack import SmsTrack


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
login_manager.login_view = "shop.login"
csrf = CSRFProtect()
smstrack = SmsTrack(db=db)


class HostUser(UserMixin, db.Model):
    __tablename__ = "host_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    staff: Mapped[bool] = mapped_column(default=False)
    superuser: Mapped[bool] = mapped_column(default=False)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def smstrack_admin(self) -> bool:
        """Superusers see every campaign in the smstrack dashboard and API."""
        return self.superuser


class Order(db.Model):
    __tablename__ = "host_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("host_users.id"))
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3), default="USD")


@login_manager.user_loader
def _load_user(user_id: str) -> HostUser | None:
    return db.session.get(HostUser, int(user_id)) if user_id.isdigit() else None


@smstrack.access_check
def _staff_only(user: HostUser) -> bool:
    return user.staff


bp = Blueprint("shop", __name__)

_LOGIN_PAGE = """<!doctype html>
<form method="post">
  <input name="csrf_token" type="hidden" value="{{ csrf_token() }}">
  <input name="email" type="email"> <input name="password" type="password">
  {% if error %}<p class="error">{{ error }}</p>{% endif %}
  <button>Log in</button>
</form>"""

_CHECKOUT_PAGE = """<!doctype html>
<form method="post">
  <input name="csrf_token" type="hidden" value="{{ csrf_token() }}">
  <input name="total" value="49.90"> <button>Pay</button>
</form>"""


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("shop.home")


@bp.get("/")
def home() -> str:
    return "Welcome to the shop"


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    if request.method == "GET":
        return render_template_string(_LOGIN_PAGE)
    email = request.form.get("email", "").strip().lower()
    user = db.session.execute(select(HostUser).where(HostUser.email == email)).scalar_one_or_none()
    if user is None or not user.check_password(request.form.get("password", "")):
        return render_template_string(_LOGIN_PAGE, error="Wrong email or password."), 400
    login_user(user)
    return redirect(_safe_next(request.args.get("next")))


@bp.post("/logout")
def logout() -> Response:
    logout_user()
    return redirect(url_for("shop.home"))


@bp.route("/checkout", methods=["GET", "POST"])
def checkout() -> str | tuple[Response, int]:
    if request.method == "GET":
        return render_template_string(_CHECKOUT_PAGE)
    try:
        total = Decimal(request.form.get("total", ""))
    except InvalidOperation:
        return jsonify(error="total must be an amount"), 400
    order = Order(total=total, currency="USD", user_id=current_user.id if current_user.is_authenticated else None)
    db.session.add(order)
    db.session.commit()
    result = smstrack.record_conversion(
        event="purchase", revenue=total, currency="USD", order_id=str(order.id)
    )
    return jsonify(
        order_id=order.id,
        conversion_id=result.conversion.id,
        attributed=result.attributed,
        duplicate=result.duplicate,
    ), 201


@bp.get("/whoami-click")
def whoami_click() -> Response:
    click = smstrack.current_click()
    return Response(click.click_id if click else "none", mimetype="text/plain")


def create_app(database_url: str, *, login_after_smstrack: bool = False, **config: Any) -> Flask:
    """The shop, with smstrack mounted on it. ``login_after_smstrack`` sets
    up the shop's ``LoginManager`` after smstrack, as some factories do."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY="host-secret", SQLALCHEMY_DATABASE_URI=database_url, PASSWORD_HASH_METHOD="scrypt")
    app.config.update(config)
    app.config.setdefault("SMSTRACK_JOB_INTERVAL", 0)  # tests run periodic jobs when they mean to
    db.init_app(app)
    if not login_after_smstrack:
        login_manager.init_app(app)
    csrf.init_app(app)
    smstrack.init_app(app)
    if login_after_smstrack:
        login_manager.init_app(app)
    app.register_blueprint(bp)
    return app


def create_tables() -> None:
    """Create the shop's own tables, and only those (inside an app context).

    The smstrack tables are created by ``flask_smstrack.db.migrate.upgrade()``.
    """
    db.metadata.create_all(db.engine, tables=list(db.metadata.tables.values()))


def delete_rows() -> None:
    """Delete every row of the shop's own tables (inside an app context)."""
    tables = list(reversed(db.metadata.sorted_tables))
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(t.name for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())
