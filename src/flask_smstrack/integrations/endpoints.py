"""Writes on an owner's endpoints: add, delete, enable again, and the
Google Analytics 4 stream."""
from __future__ import annotations

import base64
import secrets

from sqlalchemy import delete, select, update

from ..models import WebhookDelivery, WebhookEndpoint, utcnow
from ..state import get_state
from .events import ensure_cursors

#: Random bytes in a new secret (Standard Webhooks asks for 24 to 64).
SECRET_BYTES = 32
#: The event a GA4 stream gets.
GA4_EVENTS = ["conversion"]


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and base64 of random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def create_endpoint(owner_id: str, url: str, events: list[str]) -> WebhookEndpoint:
    """A new enabled endpoint of ``owner_id`` with a fresh secret; it gets
    the events that happen from now on."""
    session = get_state().db.session
    ensure_cursors(session)
    endpoint = WebhookEndpoint(owner_id=owner_id, kind="webhook", url=url, secret=new_secret(), events=list(events))
    session.add(endpoint)
    session.commit()
    return endpoint


def _delete(endpoint_id: int) -> None:
    session = get_state().db.session
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))
    session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))
    session.commit()


def delete_endpoint(owner_id: str, endpoint_id: int) -> bool:
    """Delete one of the owner's webhook endpoints and its deliveries;
    whether there was one."""
    session = get_state().db.session
    found = session.execute(select(WebhookEndpoint.id).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.owner_id == owner_id, WebhookEndpoint.kind == "webhook",
    )).first()
    if found is None:
        session.rollback()
        return False
    _delete(endpoint_id)
    return True


def enable_endpoint(owner_id: str, endpoint_id: int) -> bool:
    """Enable a disabled endpoint of the owner again (its failure count
    starts over); whether the owner has it."""
    session = get_state().db.session
    changed = session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.owner_id == owner_id)
        .values(enabled=True, disabled_at=None, disabled_reason=None, failed_deliveries=0)
    ).rowcount
    session.commit()
    return bool(changed)


def set_ga4(owner_id: str, measurement_id: str, api_secret: str) -> WebhookEndpoint:
    """Forward the owner's conversions to this GA4 stream (replacing the
    one set before, whose deliveries go with it)."""
    remove_ga4(owner_id)
    session = get_state().db.session
    ensure_cursors(session)
    stream = WebhookEndpoint(
        owner_id=owner_id, kind="ga4", secret=api_secret, measurement_id=measurement_id, events=list(GA4_EVENTS),
        created_at=utcnow(),
    )
    session.add(stream)
    session.commit()
    return stream


def remove_ga4(owner_id: str) -> bool:
    """Stop forwarding the owner's conversions to GA4; whether it was on."""
    session = get_state().db.session
    ids = session.execute(select(WebhookEndpoint.id).where(
        WebhookEndpoint.owner_id == owner_id, WebhookEndpoint.kind == "ga4",
    )).scalars().all()
    session.rollback()
    for endpoint_id in ids:
        _delete(endpoint_id)
    return bool(ids)
