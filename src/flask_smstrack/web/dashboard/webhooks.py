"""The "Webhooks" page: the signed-in owner's endpoints (add, show the
secret, delete, enable again), the delivery log with "Resend", and the
Google Analytics 4 stream."""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from werkzeug.wrappers import Response
from wtforms import SelectMultipleField, StringField, widgets

from ...auth import principal_from_user
from ...errors import InvalidInput, NotFound
from ...integrations.endpoints import create_endpoint, delete_endpoint, enable_endpoint, remove_ga4, set_ga4
from ...integrations.log import (
    disabled_endpoints,
    ga4_stream,
    get_delivery,
    get_endpoint,
    list_deliveries,
    list_endpoints,
)
from ...integrations.webhooks_out import resend
from ...models.webhooks import EVENTS
from ...schemas.webhooks import Ga4Schema, WebhookEndpointSchema
from .base import bp, dashboard_principal


class EndpointForm(FlaskForm):
    url = StringField("URL")
    events = SelectMultipleField(
        "Events", choices=list(EVENTS), option_widget=widgets.CheckboxInput(),
        widget=widgets.ListWidget(prefix_label=False),
    )


class Ga4Form(FlaskForm):
    measurement_id = StringField("Measurement ID")
    api_secret = StringField("API secret")


class ActionForm(FlaskForm):
    pass


@bp.context_processor
def _webhook_notice() -> dict[str, Any]:
    def disabled() -> list:
        if not getattr(current_user, "is_authenticated", False):
            return []
        principal = principal_from_user(current_user._get_current_object())
        return disabled_endpoints(principal.owner_id) if principal is not None else []

    return {"smstrack_disabled_endpoints": disabled}


def _page(status: int = 200, **context: Any) -> tuple[str, int]:
    owner = dashboard_principal().owner_id
    context.setdefault("form", EndpointForm(formdata=None, events=["conversion"]))
    context.setdefault("ga4_form", Ga4Form(formdata=None))
    context.setdefault("errors", {})
    return render_template(
        "smstrack/webhooks.html", endpoints=list_endpoints(owner), deliveries=list_deliveries(owner, limit=50),
        ga4=ga4_stream(owner), action_form=ActionForm(), events=EVENTS, **context,
    ), status


@bp.route("/webhooks", methods=["GET", "POST"])
@login_required
def webhooks() -> tuple[str, int]:
    owner = dashboard_principal().owner_id
    if request.method == "GET":
        return _page()
    form = EndpointForm()
    if not form.validate_on_submit():
        return _page(400, form=form, errors={"form": ["The form expired; please try again."]})
    try:
        data = WebhookEndpointSchema().load({"url": (form.url.data or "").strip(), "events": form.events.data or []})
    except ValidationError as err:
        return _page(400, form=form, errors=err.messages)
    endpoint = create_endpoint(owner, data["url"], data["events"])
    # Shown in this answer only: never flashed into the session cookie.
    return _page(201, new_secret=(endpoint.id, endpoint.secret))


def _action(endpoint_id: int):
    if not ActionForm().validate_on_submit():
        raise InvalidInput("The form expired; please try again.")
    endpoint = get_endpoint(dashboard_principal().owner_id, endpoint_id)
    if endpoint is None:
        raise NotFound("There is no such endpoint of yours.")
    return endpoint


@bp.post("/webhooks/<int:endpoint_id>/secret")
@login_required
def webhook_secret(endpoint_id: int) -> tuple[str, int]:
    endpoint = _action(endpoint_id)
    return _page(new_secret=(endpoint.id, endpoint.secret))


def _change(endpoint_id: int, change, message: str) -> Response:
    endpoint = _action(endpoint_id)
    change(endpoint.owner_id, endpoint.id)
    flash(message)
    return redirect(url_for("smstrack_dashboard.webhooks"))


@bp.post("/webhooks/<int:endpoint_id>/delete")
@login_required
def webhook_delete(endpoint_id: int) -> Response:
    return _change(endpoint_id, delete_endpoint, "Endpoint deleted.")


@bp.post("/webhooks/<int:endpoint_id>/enable")
@login_required
def webhook_enable(endpoint_id: int) -> Response:
    return _change(endpoint_id, enable_endpoint, "Enabled again: new events go to it from now on.")


@bp.post("/webhooks/deliveries/<int:delivery_id>/resend")
@login_required
def webhook_resend(delivery_id: int) -> Response:
    if not ActionForm().validate_on_submit():
        raise InvalidInput("The form expired; please try again.")
    delivery = get_delivery(dashboard_principal().owner_id, delivery_id)
    if delivery is None:
        raise NotFound("There is no such delivery of yours.")
    resend(delivery)
    flash(f"Delivery {delivery_id} sent again.")
    return redirect(url_for("smstrack_dashboard.webhooks"))


@bp.post("/webhooks/ga4")
@login_required
def webhook_ga4() -> tuple[str, int] | Response:
    owner = dashboard_principal().owner_id
    form = Ga4Form()
    if not form.validate_on_submit():
        return _page(400, ga4_form=form, ga4_errors={"form": ["The form expired; please try again."]})
    if request.form.get("remove"):
        remove_ga4(owner)
        flash("Conversions no longer go to Google Analytics 4.")
        return redirect(url_for("smstrack_dashboard.webhooks"))
    try:
        data = Ga4Schema().load({"measurement_id": (form.measurement_id.data or "").strip(),
                                 "api_secret": (form.api_secret.data or "").strip()})
    except ValidationError as err:
        return _page(400, ga4_form=form, ga4_errors=err.messages)
    set_ga4(owner, data["measurement_id"], data["api_secret"])
    flash(f"Conversions go to Google Analytics 4 ({data['measurement_id']}) from now on.")
    return redirect(url_for("smstrack_dashboard.webhooks"))
