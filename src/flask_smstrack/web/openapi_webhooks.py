"""The outbound webhook and GA4 operations of the OpenAPI document (see
:mod:`.openapi`)."""
from __future__ import annotations

from apispec import APISpec

from ..schemas import MAX_ID
from ..schemas.webhooks import MAX_DELIVERIES, DeliverySchema, Ga4Schema, WebhookEndpointSchema

_ERRORS = {
    "description": "Invalid input: each field with its messages.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}},
}
_ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _body(name: str) -> dict:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def webhook_paths(spec: APISpec) -> None:
    """Endpoints, the delivery log and the GA4 stream."""
    spec.components.schema("WebhookEndpoint", schema=WebhookEndpointSchema)
    spec.components.schema("Delivery", schema=DeliverySchema)
    spec.components.schema("Ga4In", schema=Ga4Schema)
    spec.components.schema("Ga4", {"type": "object", "properties": {
        "enabled": {"type": "boolean"}, "measurement_id": {"type": "string", "nullable": True},
        "disabled_reason": {"type": "string", "nullable": True}, "failed_deliveries": {"type": "integer"},
    }})
    endpoint_id = [{"name": "endpoint_id", "in": "path", "required": True, "schema": _ID_SCHEMA}]
    spec.path("/webhook-endpoints", operations={
        "get": {"summary": "Your webhook endpoints", "responses": {"200": _json(
            {"type": "object", "properties": {"endpoints": {"type": "array", "items": _ref("WebhookEndpoint")}}},
            "Endpoints")}},
        "post": {
            "summary": "Add a webhook endpoint: events are signed with its secret (Standard Webhooks), shown here",
            "requestBody": _body("WebhookEndpoint"),
            "responses": {"201": _json(_ref("WebhookEndpoint"), "Added, with its secret"), "400": _ERRORS},
        },
    })
    spec.path("/webhook-endpoints/{endpoint_id}", parameters=endpoint_id, operations={
        "delete": {"summary": "Delete an endpoint and its deliveries", "responses": {"204": {"description": "Deleted"}}},
    })
    spec.path("/webhook-endpoints/{endpoint_id}/secret", parameters=endpoint_id, operations={
        "get": {"summary": "An endpoint's signing secret", "responses": {"200": _json(
            {"type": "object", "properties": {"secret": {"type": "string"}}}, "The secret")}},
    })
    spec.path("/webhook-endpoints/{endpoint_id}/enable", parameters=endpoint_id, operations={
        "post": {"summary": "Enable an endpoint again after it was disabled for failing",
                 "responses": {"200": _json(_ref("WebhookEndpoint"), "Enabled")}},
    })
    spec.path("/webhook-deliveries", operations={
        "get": {
            "summary": "Your most recent deliveries, newest first",
            "parameters": [
                {"name": "endpoint_id", "in": "query", "schema": _ID_SCHEMA},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_DELIVERIES}},
            ],
            "responses": {"200": _json(
                {"type": "object", "properties": {"deliveries": {"type": "array", "items": _ref("Delivery")}}},
                "Deliveries")},
        },
    })
    spec.path("/webhook-deliveries/{delivery_id}/resend", parameters=[
        {"name": "delivery_id", "in": "path", "required": True, "schema": _ID_SCHEMA},
    ], operations={
        "post": {"summary": "Send a delivery again, with a fresh set of retries",
                 "responses": {"202": _json(_ref("Delivery"), "On its way")}},
    })
    spec.path("/ga4", operations={
        "get": {"summary": "The GA4 stream your conversions go to", "responses": {"200": _json(_ref("Ga4"), "The stream")}},
        "put": {"summary": "Forward your conversions to a GA4 stream as purchase events",
                "requestBody": _body("Ga4In"), "responses": {"200": _json(_ref("Ga4"), "Set"), "400": _ERRORS}},
        "delete": {"summary": "Stop forwarding conversions to GA4", "responses": {"204": {"description": "Stopped"}}},
    })
