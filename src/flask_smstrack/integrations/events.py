"""Events become deliveries.

Clicks, conversions, refunds and opt-outs are found by a scan of each table
by id after a stored cursor (:class:`~flask_smstrack.models.WebhookCursor`),
run by the periodic job: the redirect and the collector do no work for
webhooks. A row committed late (a click replayed from the spool gets a new
id; on PostgreSQL a transaction may commit after one that took a later id)
is still found, since each scan reads again the last :data:`LOOKBACK` ids
before the cursor; a delivery is made once per endpoint and event (a
unique key). Message statuses are emitted by the delivery receipt that
changes one (:func:`emit_message_status`).

Payloads carry ids, the campaign, and amounts as decimal strings; never a
phone number.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from ..models import (
    Campaign,
    Click,
    Conversion,
    Link,
    OptOutEvent,
    Recipient,
    Refund,
    WebhookCursor,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from ..schemas import api_value, format_money
from ..state import get_state

logger = logging.getLogger("flask_smstrack")

#: Ids before the cursor that each scan reads again, for rows committed late.
LOOKBACK = 200
#: Rows read per table and scan.
BATCH = 500


def iso(value: dt.datetime | None) -> str | None:
    """``2026-12-01T09:30:00.123456Z``."""
    return None if value is None else value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def body(event_type: str, at: dt.datetime | None, data: dict[str, Any]) -> str:
    """The JSON a webhook receives: ``{"type", "timestamp", "data"}``."""
    return json.dumps({"type": event_type, "timestamp": iso(at or utcnow()), "data": data}, separators=(",", ":"))


_camp = Campaign.__table__.c
_clk = Click.__table__.c
_conv = Conversion.__table__.c


def _batch(query, pk, owner, low: int, top: int, owners: Iterable[str], *where):
    """The first :data:`BATCH` rows of ``query`` with ``low < pk <= top``
    whose ``owner`` listens, by id."""
    return query.where(pk > low, pk <= top, *where, owner.in_(list(owners))).order_by(pk).limit(BATCH)


def _click_rows(low: int, top: int, owners: Iterable[str]):
    link = Link.__table__.c
    return _batch(
        select(
            _clk.id, _clk.click_id, _clk.created_at, _clk.campaign_id, _clk.link_id, _clk.variant_id,
            _clk.recipient_id, _clk.kind, _clk.is_first, _clk.source, _clk.device_type, _clk.os, _clk.browser,
            _clk.country, _camp.owner_id.label("owner"), _camp.name.label("campaign"), link.code,
        )
        .join(Campaign.__table__, _camp.id == _clk.campaign_id)
        .outerjoin(Link.__table__, link.id == _clk.link_id),
        _clk.id, _camp.owner_id, low, top, owners,
    )


def _click_data(row) -> dict[str, Any]:
    return {
        "click_id": row.click_id, "campaign_id": row.campaign_id, "campaign": row.campaign, "link_id": row.link_id,
        "code": row.code, "variant_id": row.variant_id, "recipient_id": row.recipient_id, "kind": row.kind,
        "is_first": bool(row.is_first), "source": row.source, "device_type": row.device_type, "os": row.os,
        "browser": row.browser, "country": row.country, "created_at": iso(row.created_at),
    }


def _conversion_rows(low: int, top: int, owners: Iterable[str]):
    return _batch(
        select(
            _conv.id, _conv.created_at, _conv.owner_id.label("owner"), _conv.event, _conv.revenue, _conv.currency,
            _conv.order_id, _conv.source, _conv.trust, _conv.campaign_id, _conv.link_id, _conv.variant_id,
            _conv.recipient_id, _conv.reported_click_id, _camp.name.label("campaign"),
            _clk.click_id, _clk.visitor_id,
        )
        .outerjoin(Campaign.__table__, _camp.id == _conv.campaign_id)
        .outerjoin(Click.__table__, _clk.id == _conv.click_pk),
        _conv.id, _conv.owner_id, low, top, owners,
    )


def _conversion_data(row) -> dict[str, Any]:
    return {
        "conversion_id": row.id, "event": row.event, "revenue": api_value(row.revenue, "money"), "currency": row.currency,
        "order_id": row.order_id, "click_id": row.click_id or row.reported_click_id, "campaign_id": row.campaign_id,
        "campaign": row.campaign, "link_id": row.link_id, "variant_id": row.variant_id,
        "recipient_id": row.recipient_id, "source": row.source, "trust": row.trust, "created_at": iso(row.created_at),
    }


def _refund_rows(low: int, top: int, owners: Iterable[str]):
    ref = Refund.__table__.c
    return _batch(
        select(
            ref.id, ref.created_at, ref.conversion_id, ref.amount, ref.currency, ref.reason, ref.external_id,
            _conv.owner_id.label("owner"), _conv.order_id, _conv.event, _conv.campaign_id,
            _camp.name.label("campaign"),
        )
        .join(Conversion.__table__, _conv.id == ref.conversion_id)
        .outerjoin(Campaign.__table__, _camp.id == _conv.campaign_id),
        ref.id, _conv.owner_id, low, top, owners,
    )


def _refund_data(row) -> dict[str, Any]:
    return {
        "refund_id": row.id, "conversion_id": row.conversion_id, "event": row.event, "order_id": row.order_id,
        "amount": api_value(row.amount, "money"), "currency": row.currency, "reason": row.reason, "external_id": row.external_id,
        "campaign_id": row.campaign_id, "campaign": row.campaign, "created_at": iso(row.created_at),
    }


def _opt_out_rows(low: int, top: int, owners: Iterable[str]):
    ev = OptOutEvent.__table__.c
    return _batch(
        select(
            ev.id, ev.created_at, ev.owner_id.label("owner"), ev.source, ev.keyword, ev.campaign_id, ev.variant_id,
            ev.recipient_id, _camp.name.label("campaign"),
        )
        .outerjoin(Campaign.__table__, _camp.id == ev.campaign_id),
        ev.id, ev.owner_id, low, top, owners, ev.action == "opt_out",
    )


def _opt_out_data(row) -> dict[str, Any]:
    return {
        "opt_out_id": row.id, "source": row.source, "keyword": row.keyword, "campaign_id": row.campaign_id,
        "campaign": row.campaign, "variant_id": row.variant_id, "recipient_id": row.recipient_id,
        "created_at": iso(row.created_at),
    }


#: The scanned tables: event type, the table's id column, the query of its
#: rows and their payload's data.
STREAMS: dict[str, tuple[Any, Callable, Callable]] = {
    "click": (_clk.id, _click_rows, _click_data),
    "conversion": (_conv.id, _conversion_rows, _conversion_data),
    "refund": (Refund.__table__.c.id, _refund_rows, _refund_data),
    "opt_out": (OptOutEvent.__table__.c.id, _opt_out_rows, _opt_out_data),
}


def ga4_body(row) -> str:
    """A GA4 Measurement Protocol body: one ``purchase`` with the order
    (or the conversion) as transaction id, the revenue as a JSON number
    written from the Decimal, never through a float."""
    client_id = row.visitor_id or row.click_id or row.reported_click_id or f"smstrack.{row.id}"
    params: dict[str, Any] = {
        "transaction_id": row.order_id or f"smstrack-{row.id}",
        "currency": row.currency,
        "campaign": row.campaign,
        "source": "sms",
        "medium": "sms",
    }
    if row.revenue is None:
        params["value"] = 0
        placeholder = None
    else:
        placeholder = "__smstrack_value__"
        params["value"] = placeholder
    text = json.dumps({"client_id": client_id, "events": [{"name": "purchase", "params": params}]},
                      separators=(",", ":"))
    if placeholder:
        text = text.replace(f'"{placeholder}"', format_money(row.revenue), 1)
    return text


def subscribers(session, event_type: str) -> dict[str, list[WebhookEndpoint]]:
    """The enabled endpoints that take ``event_type``, by owner."""
    by_owner: dict[str, list[WebhookEndpoint]] = defaultdict(list)
    for endpoint in session.execute(select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True))).scalars():
        if event_type in (endpoint.events or []):
            by_owner[endpoint.owner_id].append(endpoint)
    return by_owner


def _top(session, column) -> int:
    return int(session.execute(select(func.max(column))).scalar() or 0)


def ensure_cursors(session) -> None:
    """Start each table's cursor at its newest row, where none is stored:
    an endpoint gets the events that happen after it was added."""
    have = set(session.execute(select(WebhookCursor.name)).scalars())
    for name, (column, _, _) in STREAMS.items():
        if name not in have:
            session.add(WebhookCursor(name=name, last_id=_top(session, column)))


def add_deliveries(session, candidates: list[tuple[WebhookEndpoint, str, str, str]]) -> int:
    """Insert ``(endpoint, event_id, event_type, payload)`` as pending
    deliveries, but those already made; how many were new."""
    if not candidates:
        return 0
    existing = {tuple(row) for row in session.execute(select(WebhookDelivery.endpoint_id, WebhookDelivery.event_id).where(
        WebhookDelivery.endpoint_id.in_({e.id for e, *_ in candidates}),
        WebhookDelivery.event_id.in_({event_id for _, event_id, *_ in candidates}),
    )).all()}
    now = utcnow()
    rows = [
        {"endpoint_id": e.id, "event_id": event_id, "event_type": event_type, "payload": payload, "status": "pending",
         "attempts": 0, "next_attempt_at": now, "created_at": now}
        for e, event_id, event_type, payload in candidates if (e.id, event_id) not in existing
    ]
    if rows:
        session.execute(insert(WebhookDelivery), rows)
    return len(rows)


def scan(event_type: str) -> int:
    """Read the table of ``event_type`` after its cursor and make the
    deliveries of its new rows; the number made."""
    session = get_state().db.session
    column, rows_query, data_of = STREAMS[event_type]
    try:
        ensure_cursors(session)
        cursor = session.get(WebhookCursor, event_type)
        top = _top(session, column)
        owners = subscribers(session, event_type)
        if not owners:  # no one listens: a later endpoint starts from here
            cursor.last_id = top
            session.commit()
            return 0
        rows = session.execute(rows_query(max(cursor.last_id - LOOKBACK, 0), top, owners)).all()
        candidates = []
        for row in rows:
            for endpoint in owners.get(row.owner, ()):
                if row.created_at is not None and row.created_at < endpoint.created_at:
                    continue
                if endpoint.kind == "ga4":
                    payload = ga4_body(row)
                else:
                    payload = body(event_type, row.created_at, data_of(row))
                candidates.append((endpoint, f"{event_type}_{row.id}", event_type, payload))
        made = add_deliveries(session, candidates)
        cursor.last_id = max(cursor.last_id, rows[-1].id if len(rows) == BATCH else top)
        session.commit()
        return made
    except IntegrityError:
        # Another scan made the same deliveries first: this one's cursor
        # stays, and the next scan finds them made.
        session.rollback()
        logger.info("Webhook scan of %s raced another; it goes on next round", event_type)
        return 0
    except Exception:
        session.rollback()
        raise


def scan_all() -> dict[str, int]:
    """Every table's scan; deliveries made per event type."""
    return {event_type: scan(event_type) for event_type in STREAMS}


def emit_message_status(message_sid: str) -> int:
    """Deliveries of a message's new status (called once a delivery receipt
    changed it) for its campaign owner's endpoints; never raises."""
    session = get_state().db.session
    r = Recipient.__table__.c
    try:
        row = session.execute(
            select(r.id, r.external_id, r.campaign_id, r.variant_id, r.status, r.error_code, r.segments, r.status_at,
                   _camp.owner_id, _camp.name)
            .join(Campaign.__table__, _camp.id == r.campaign_id)
            .where(r.message_sid == message_sid)
        ).first()
        owners = subscribers(session, "message.status") if row is not None else {}
        endpoints = owners.get(row.owner_id, []) if row is not None else []
        if not endpoints:
            session.commit()
            return 0
        payload = body("message.status", row.status_at, {
            "recipient_id": row.id, "external_id": row.external_id, "campaign_id": row.campaign_id,
            "campaign": row.name, "variant_id": row.variant_id, "status": row.status, "error_code": row.error_code,
            "segments": row.segments, "status_at": iso(row.status_at),
        })
        made = add_deliveries(
            session, [(e, f"message.status_{row.id}_{row.status}", "message.status", payload) for e in endpoints]
        )
        session.commit()
        return made
    except Exception:
        session.rollback()
        logger.exception("The message.status webhook of %s was not made", message_sid)
        return 0
