"""Input and output of outbound webhook endpoints, their deliveries and the
Google Analytics 4 stream."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, has_app_context
from marshmallow import Schema, ValidationError, fields, validate, validates

from ..config import Keys
from ..models.webhooks import EVENTS
from . import StrictSchema

#: Hosts that may take plain ``http://`` without ``SMSTRACK_WEBHOOK_ALLOW_HTTP``.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
#: Deliveries per page of the log.
MAX_DELIVERIES = 200


def endpoint_url(value: str) -> None:
    """An https URL, or http to this machine (or anywhere with
    ``SMSTRACK_WEBHOOK_ALLOW_HTTP``)."""
    if any(c.isspace() for c in value):
        raise ValidationError("Must be a URL without spaces.")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValidationError("Must be an absolute https:// URL.") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValidationError("Must be an absolute https:// URL.")
    if parts.username or parts.password:
        raise ValidationError("Must not carry a user name or password.")
    allow_http = has_app_context() and current_app.config.get(Keys.WEBHOOK_ALLOW_HTTP)
    if parts.scheme == "http" and host not in LOCAL_HOSTS and not allow_http:
        raise ValidationError("Must use https:// (http:// only to localhost or 127.0.0.1).")


class WebhookEndpointSchema(StrictSchema):
    """An endpoint: ``{"url": "https://...", "events": ["conversion", ...]}``;
    the answer to its creation carries its secret, once."""

    id = fields.Integer(dump_only=True)
    url = fields.String(required=True, validate=[validate.Length(min=1, max=2048), endpoint_url])
    events = fields.List(
        fields.String(validate=validate.OneOf(EVENTS, error=f"Must be one of: {', '.join(EVENTS)}.")),
        required=True,
        validate=validate.Length(min=1, max=len(EVENTS), error="Give from 1 to 5 events."),
    )
    secret = fields.String(dump_only=True)
    enabled = fields.Boolean(dump_only=True)
    failed_deliveries = fields.Integer(dump_only=True)
    disabled_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    disabled_reason = fields.String(dump_only=True, allow_none=True)
    last_success_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    last_failure_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    created_at = fields.AwareDateTime(dump_only=True)

    @validates("events")
    def _unique(self, value, **kwargs):
        if len(set(value)) != len(value):
            raise ValidationError("Give each event once.")


class DeliverySchema(Schema):
    """One event sent (or on its way) to one endpoint."""

    id = fields.Integer()
    endpoint_id = fields.Integer()
    event_id = fields.String()
    event_type = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    next_attempt_at = fields.AwareDateTime(allow_none=True)
    last_attempt_at = fields.AwareDateTime(allow_none=True)
    response_status = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    delivered_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()


class DeliveryQuerySchema(StrictSchema):
    """Query of the delivery log: ``?endpoint_id=`` and ``?limit=``."""

    endpoint_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**31 - 1))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_DELIVERIES))


class Ga4Schema(StrictSchema):
    """A GA4 stream: its measurement id and a Measurement Protocol API secret."""

    measurement_id = fields.String(
        required=True,
        validate=validate.Regexp(r"^G-[A-Z0-9]{4,20}$", error="Must be a GA4 measurement id, e.g. G-ABC123XYZ."),
    )
    api_secret = fields.String(
        required=True, load_only=True,
        validate=validate.Regexp(r"^[A-Za-z0-9_-]{8,100}$", error="Must be 8 to 100 letters, digits, - or _."),
    )
