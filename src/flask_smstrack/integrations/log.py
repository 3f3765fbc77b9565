"""Reads of endpoints and deliveries, for the dashboard and the API: an
owner sees only their own."""
from __future__ import annotations

from sqlalchemy import select

from ..models import WebhookDelivery, WebhookEndpoint
from ..state import get_state


def list_endpoints(owner_id: str) -> list[WebhookEndpoint]:
    """The owner's webhook endpoints, oldest first."""
    rows = get_state().db.session.execute(select(WebhookEndpoint).where(
        WebhookEndpoint.owner_id == owner_id, WebhookEndpoint.kind == "webhook",
    ).order_by(WebhookEndpoint.id)).scalars().all()
    return list(rows)


def get_endpoint(owner_id: str, endpoint_id: int) -> WebhookEndpoint | None:
    """One of the owner's endpoints (webhook or GA4), or ``None``."""
    row = get_state().db.session.execute(select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.owner_id == owner_id,
    )).scalar_one_or_none()
    return row


def ga4_stream(owner_id: str) -> WebhookEndpoint | None:
    """The owner's GA4 stream, or ``None``."""
    row = get_state().db.session.execute(select(WebhookEndpoint).where(
        WebhookEndpoint.owner_id == owner_id, WebhookEndpoint.kind == "ga4",
    ).order_by(WebhookEndpoint.id.desc()).limit(1)).scalar_one_or_none()
    return row


def disabled_endpoints(owner_id: str) -> list[WebhookEndpoint]:
    """The owner's endpoints (and GA4 stream) disabled after failing."""
    rows = get_state().db.session.execute(select(WebhookEndpoint).where(
        WebhookEndpoint.owner_id == owner_id, WebhookEndpoint.enabled.is_(False),
    ).order_by(WebhookEndpoint.id)).scalars().all()
    return list(rows)


def list_deliveries(owner_id: str, *, endpoint_id: int | None = None, limit: int = 50) -> list[WebhookDelivery]:
    """The owner's most recent deliveries, newest first."""
    query = (
        select(WebhookDelivery)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookEndpoint.owner_id == owner_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    rows = get_state().db.session.execute(query).scalars().all()
    return list(rows)


def get_delivery(owner_id: str, delivery_id: int) -> WebhookDelivery | None:
    """One of the owner's deliveries, or ``None``."""
    row = get_state().db.session.execute(
        select(WebhookDelivery)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id == delivery_id, WebhookEndpoint.owner_id == owner_id)
    ).scalar_one_or_none()
    return row
