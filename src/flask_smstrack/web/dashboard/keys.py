"""The "API keys" page: whoever is logged in (a built-in user or the host
app's) lists, creates and revokes their own keys."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import Length

from ...auth import KEY_PREFIX, create_api_key, list_api_keys, revoke_api_key
from ...errors import InvalidInput, NotFound
from .base import bp, dashboard_principal


class NewKeyForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=100)])


class RevokeForm(FlaskForm):
    pass


@bp.route("/account/api-keys", methods=["GET", "POST"])
@login_required
def api_keys() -> tuple[str, int]:
    principal = dashboard_principal()
    form, new_key, status = NewKeyForm(), None, 200
    if request.method == "POST":
        if form.validate_on_submit():
            # Shown in this answer only: never flashed into the session cookie.
            new_key, _ = create_api_key(principal.owner_id, is_admin=principal.is_admin, name=(form.name.data or "").strip() or None)
            form = NewKeyForm(formdata=None)
            status = 201
        else:
            status = 400
    return render_template(
        "smstrack/api_keys.html",
        form=form,
        revoke_form=RevokeForm(),
        keys=list_api_keys(principal.owner_id),
        new_key=new_key,
        key_prefix=KEY_PREFIX,
    ), status


@bp.post("/account/api-keys/<int:key_id>/revoke")
@login_required
def api_key_revoke(key_id: int) -> Response:
    principal = dashboard_principal()
    if not RevokeForm().validate_on_submit():
        raise InvalidInput("The form expired; please try again.")
    if not revoke_api_key(principal.owner_id, key_id):
        raise NotFound("There is no such active key of yours.")
    flash("Key revoked: requests with it are refused from now on.")
    return redirect(url_for("smstrack_dashboard.api_keys"))
