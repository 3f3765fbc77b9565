"""Signing in and out of the dashboard with the built-in users."""
from __future__ import annotations

from flask import (
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from ...auth import find_user
from ...errors import InvalidInput, NotFound
from ...state import get_state
from ..limits import login_failed, login_succeeded, login_wait
from .base import bp


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class LogoutForm(FlaskForm):
    pass


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("smstrack_dashboard.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    if not get_state().builtin_login:
        raise NotFound("The built-in login is off: this app signs users in with its own login page.")
    form = LoginForm()
    if form.validate_on_submit():
        wait = login_wait(form.email.data)
        if wait is not None:
            form.password.errors.append(wait.message)
            return render_template("smstrack/login.html", form=form), 429, {"Retry-After": str(wait.seconds)}
        user = find_user(form.email.data)
        if user is not None and user.check_password(form.password.data):
            login_succeeded(form.email.data)
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        login_failed(form.email.data)
        form.password.errors.append("Wrong email or password.")
    status = 400 if request.method == "POST" else 200
    return render_template("smstrack/login.html", form=form), status


@bp.post("/logout")
def logout() -> Response:
    if not get_state().builtin_login:
        raise NotFound("The built-in login is off: this app signs users in with its own login page.")
    if not LogoutForm().validate_on_submit():
        raise InvalidInput("The form expired; please try again.")
    logout_user()
    flash("You are logged out.")
    return redirect(url_for("smstrack_dashboard.login"))
