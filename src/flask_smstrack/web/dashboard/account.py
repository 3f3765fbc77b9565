"""Signing in and out of the dashboard with the built-in users, and
changing one's password."""
from __future__ import annotations

from urllib.parse import unquote, urlsplit

from flask import (
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from ...auth import authenticate, end_sessions, set_password
from ...errors import InvalidInput, NotFound
from ...state import get_state
from ..limits import login_failed, login_succeeded, login_wait
from .base import bp


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class LogoutForm(FlaskForm):
    pass


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=200)])
    new = PasswordField("New password", validators=[DataRequired(), Length(min=8, max=200)])
    confirm = PasswordField("New password again", validators=[DataRequired(), EqualTo("new", "The two new passwords differ.")])


def is_local_path(target: str) -> bool:
    """Whether ``target`` is a path on this site, as a browser reads it.

    Browsers drop tabs and newlines from URLs and read ``\\`` as ``/``, so
    ``/\\evil.com`` and ``/<tab>/evil.com`` lead to another site just as
    ``//evil.com`` does; the value decoded once more must be a plain path too.
    """
    for value in (target, unquote(target)):
        if not value.startswith("/") or value.startswith("//") or "\\" in value:
            return False
        if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
            return False
        parts = urlsplit(value)
        if parts.scheme or parts.netloc:
            return False
    return True


def _safe_next(target: str | None) -> str:
    if target and is_local_path(target):
        return target
    return url_for("smstrack_dashboard.index")


def _builtin_login_only() -> None:
    if not get_state().builtin_login:
        raise NotFound("The built-in login is off: this app signs users in with its own login page.")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    _builtin_login_only()
    form = LoginForm()
    if form.validate_on_submit():
        wait = login_wait(form.email.data)
        if wait is not None:
            form.password.errors.append(wait.message)
            return render_template("smstrack/login.html", form=form), 429, {"Retry-After": str(wait.seconds)}
        user = authenticate(form.email.data, form.password.data)
        if user is not None:
            login_succeeded(form.email.data)
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        login_failed(form.email.data)
        form.password.errors.append("Wrong email or password.")
    status = 400 if request.method == "POST" else 200
    return render_template("smstrack/login.html", form=form), status


@bp.post("/logout")
def logout() -> Response:
    _builtin_login_only()
    if not LogoutForm().validate_on_submit():
        raise InvalidInput("The form expired; please try again.")
    if current_user.is_authenticated:
        # Copies of the session cookie stop working too.
        end_sessions(current_user._get_current_object())
    logout_user()
    flash("You are logged out.")
    return redirect(url_for("smstrack_dashboard.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password() -> str | Response:
    _builtin_login_only()
    form = PasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        if not user.check_password(form.current.data):
            form.current.errors.append("This is not your current password.")
        else:
            set_password(user, form.new.data)
            login_user(user)  # this session goes on, with the new version
            flash("Password changed. Your other sessions are logged out.")
            return redirect(url_for("smstrack_dashboard.index"))
    status = 400 if request.method == "POST" else 200
    return render_template("smstrack/password.html", form=form), status
