"""The JSON API's outbound webhooks: the caller's endpoints, their delivery
log with "resend", and the Google Analytics 4 stream (on the API blueprint,
see api.py)."""
from __future__ import annotations

from flask import g, jsonify, request
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from ..errors import InvalidInput, NotFound
from ..integrations.endpoints import create_endpoint, delete_endpoint, enable_endpoint, remove_ga4, set_ga4
from ..integrations.log import ga4_stream, get_delivery, get_endpoint, list_deliveries, list_endpoints
from ..integrations.webhooks_out import resend
from ..schemas.webhooks import DeliveryQuerySchema, DeliverySchema, Ga4Schema, WebhookEndpointSchema
from .api import _load, bp


def _owner() -> str:
    return g.smstrack_principal.owner_id


def _endpoint_out(endpoint, *, secret: bool = False) -> dict:
    out = WebhookEndpointSchema(exclude=() if secret else ("secret",)).dump(endpoint)
    return out


@bp.get("/webhook-endpoints")
def webhook_endpoints_list() -> Response:
    """Your webhook endpoints (secrets left out)."""
    return jsonify(endpoints=[_endpoint_out(e) for e in list_endpoints(_owner())])


@bp.post("/webhook-endpoints")
def webhook_endpoints_create() -> tuple[Response, int]:
    """Add an endpoint; the answer carries its signing secret."""
    data = _load(WebhookEndpointSchema())
    endpoint = create_endpoint(_owner(), data["url"], data["events"])
    return jsonify(_endpoint_out(endpoint, secret=True)), 201


@bp.get("/webhook-endpoints/<int:endpoint_id>/secret")
def webhook_endpoints_secret(endpoint_id: int) -> Response:
    """An endpoint's signing secret."""
    endpoint = get_endpoint(_owner(), endpoint_id)
    if endpoint is None or endpoint.kind != "webhook":
        raise NotFound({"endpoint_id": [f"No webhook endpoint {endpoint_id}."]})
    return jsonify(secret=endpoint.secret)


@bp.delete("/webhook-endpoints/<int:endpoint_id>")
def webhook_endpoints_delete(endpoint_id: int) -> tuple[str, int]:
    if not delete_endpoint(_owner(), endpoint_id):
        raise NotFound({"endpoint_id": [f"No webhook endpoint {endpoint_id}."]})
    return "", 204


@bp.post("/webhook-endpoints/<int:endpoint_id>/enable")
def webhook_endpoints_enable(endpoint_id: int) -> Response:
    """Enable an endpoint again after it was disabled for failing."""
    endpoint = get_endpoint(_owner(), endpoint_id)
    if endpoint is None or endpoint.kind != "webhook":
        raise NotFound({"endpoint_id": [f"No webhook endpoint {endpoint_id}."]})
    enable_endpoint(_owner(), endpoint_id)
    return jsonify(_endpoint_out(get_endpoint(_owner(), endpoint_id)))


@bp.get("/webhook-deliveries")
def webhook_deliveries_list() -> Response:
    """Your most recent deliveries, newest first (``?endpoint_id=``, ``?limit=``)."""
    try:
        query = DeliveryQuerySchema().load(request.args.to_dict())
    except ValidationError as err:
        raise InvalidInput(err.messages) from None
    rows = list_deliveries(_owner(), endpoint_id=query["endpoint_id"], limit=query["limit"])
    return jsonify(deliveries=DeliverySchema(many=True).dump(rows))


@bp.post("/webhook-deliveries/<int:delivery_id>/resend")
def webhook_deliveries_resend(delivery_id: int) -> tuple[Response, int]:
    """Send a delivery again (with a fresh set of retries)."""
    delivery = get_delivery(_owner(), delivery_id)
    if delivery is None:
        raise NotFound({"delivery_id": [f"No delivery {delivery_id}."]})
    resend(delivery)
    return jsonify(DeliverySchema().dump(get_delivery(_owner(), delivery_id))), 202


def _ga4_out(stream) -> dict:
    if stream is None:
        return {"enabled": False, "measurement_id": None}
    return {
        "enabled": stream.enabled, "measurement_id": stream.measurement_id,
        "disabled_reason": stream.disabled_reason, "failed_deliveries": stream.failed_deliveries,
    }


@bp.get("/ga4")
def ga4_get() -> Response:
    """Whether your conversions go to a GA4 stream, and which."""
    return jsonify(_ga4_out(ga4_stream(_owner())))


@bp.put("/ga4")
def ga4_put() -> Response:
    """Forward your conversions to this GA4 stream as ``purchase`` events."""
    data = _load(Ga4Schema())
    return jsonify(_ga4_out(set_ga4(_owner(), data["measurement_id"], data["api_secret"])))


@bp.delete("/ga4")
def ga4_delete() -> tuple[str, int]:
    remove_ga4(_owner())
    return "", 204
