"""Delivery of events to webhook endpoints and GA4 streams, with retries.

The periodic job :func:`dispatch` (every ``SMSTRACK_JOB_INTERVAL`` seconds,
on the RQ worker with Redis, else on a thread of a web process) makes the
deliveries of new events (:mod:`.events`) and attempts those that are due.

Each attempt is claimed first: one ``UPDATE`` moves the delivery from
``pending`` to ``sending`` and only the worker whose update changed the row
sends it, so a delivery that succeeded is never sent again (but by a
"Resend"). A claim older than the timeout belongs to a worker that died:
the delivery is due again, and its receiver may see that event twice, with
the same ``webhook-id``.

A failed attempt is retried after ``SMSTRACK_WEBHOOK_RETRY_BASE`` seconds x
1, 60, 360, 1440, 3600, 7200 (5 s, 5 min, 30 min, 2 h, 5 h, 10 h), up to
``SMSTRACK_WEBHOOK_RETRIES`` times; after ``SMSTRACK_WEBHOOK_DISABLE_AFTER``
deliveries in a row that failed every retry the endpoint is disabled, and
the dashboard says so.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from flask import current_app
from sqlalchemy import and_, delete, or_, select, update
from standardwebhooks import Webhook

from ..config import Keys
from ..models import WebhookDelivery, WebhookEndpoint, utcnow
from ..state import enqueue, get_state
from .events import scan_all

logger = logging.getLogger("flask_smstrack")

#: The job that attempts one delivery now, as :func:`~flask_smstrack.state.enqueue` takes it.
DELIVER = "flask_smstrack.integrations.webhooks_out:deliver"
#: Waits before each retry, in units of ``SMSTRACK_WEBHOOK_RETRY_BASE``.
RETRY_STEPS = (1, 60, 360, 1440, 3600, 7200)
#: Deliveries attempted per round of :func:`deliver_due`.
DUE_BATCH = 200
#: Finished deliveries are deleted after this many days.
KEEP_DAYS = 30
USER_AGENT = "flask-smstrack-webhooks"

_D = WebhookDelivery
_E = WebhookEndpoint


def _config(key: str) -> Any:
    return current_app.config[key]


def retry_delay(attempts: int) -> dt.timedelta | None:
    """The wait after the ``attempts``-th failed attempt, or ``None`` when
    no retry is left."""
    retries = min(int(_config(Keys.WEBHOOK_RETRIES)), len(RETRY_STEPS))
    if attempts > retries:
        return None
    return dt.timedelta(seconds=float(_config(Keys.WEBHOOK_RETRY_BASE)) * RETRY_STEPS[attempts - 1])


def _stale_claim(now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(seconds=2 * float(_config(Keys.WEBHOOK_TIMEOUT)) + 30)


def _due(now: dt.datetime):
    return or_(
        and_(_D.status == "pending", _D.next_attempt_at <= now),
        and_(_D.status == "sending", _D.claimed_at < _stale_claim(now)),
    )


def claim(delivery_id: int, now: dt.datetime) -> bool:
    """Take the delivery for one attempt: ``True`` for the one worker whose
    update changed the row."""
    session = get_state().db.session
    won = session.execute(
        update(_D).where(_D.id == delivery_id, _due(now)).values(status="sending", claimed_at=now, attempts=_D.attempts + 1)
    ).rowcount == 1
    session.commit()
    return won


def ga4_url(measurement_id: str | None, api_secret: str) -> str:
    query = urlencode({"measurement_id": measurement_id or "", "api_secret": api_secret})
    return f"{_config(Keys.GA4_ENDPOINT)}?{query}"


@dataclass(frozen=True)
class _Attempt:
    """What one attempt sends, read before the request so that no
    transaction stays open while the receiver answers."""

    delivery_id: int
    endpoint_id: int
    attempts: int
    event_id: str
    payload: str
    kind: str
    url: str | None
    secret: str
    measurement_id: str | None


def _request(a: _Attempt) -> tuple[int | None, str | None]:
    """One HTTP attempt: the status, and what went wrong (``None`` on a 2xx)."""
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if a.kind == "ga4":
        url = ga4_url(a.measurement_id, a.secret)
    else:
        url = a.url or ""
        at = utcnow()
        headers.update({
            "webhook-id": a.event_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(a.secret).sign(a.event_id, at, a.payload),
        })
    timeout = float(_config(Keys.WEBHOOK_TIMEOUT))
    try:
        response = requests.post(
            url, data=a.payload.encode(), headers=headers, timeout=(timeout, timeout), allow_redirects=False,
        )
        response.close()
    except requests.RequestException as err:
        return None, f"{type(err).__name__}: {err}"[:200]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


def _mine(a: _Attempt, now: dt.datetime):
    return and_(_D.id == a.delivery_id, _D.status == "sending", _D.claimed_at == now)


def _succeeded(session, a: _Attempt, status: int | None, now: dt.datetime) -> None:
    session.execute(update(_D).where(_mine(a, now)).values(
        status="delivered", delivered_at=utcnow(), last_attempt_at=now, response_status=status, error=None,
        next_attempt_at=None, claimed_at=None,
    ))
    session.execute(update(_E).where(_E.id == a.endpoint_id).values(failed_deliveries=0, last_success_at=now))


def _failed(session, a: _Attempt, status: int | None, error: str, now: dt.datetime) -> str:
    wait = retry_delay(a.attempts)
    values: dict[str, Any] = {"last_attempt_at": now, "response_status": status, "error": error[:200], "claimed_at": None}
    if wait is not None:
        values.update(status="pending", next_attempt_at=now + wait)
    else:
        values.update(status="failed", next_attempt_at=None)
    session.execute(update(_D).where(_mine(a, now)).values(**values))
    session.execute(update(_E).where(_E.id == a.endpoint_id).values(
        failed_attempts=_E.failed_attempts + 1, last_failure_at=now,
        failed_deliveries=_E.failed_deliveries + (1 if wait is None else 0),
    ))
    if wait is None:
        limit = int(_config(Keys.WEBHOOK_DISABLE_AFTER))
        session.execute(update(_E).where(
            _E.id == a.endpoint_id, _E.enabled.is_(True), _E.failed_deliveries >= limit,
        ).values(
            enabled=False, disabled_at=now,
            disabled_reason=f"{limit} deliveries in a row failed every retry; the last: {error}"[:200],
        ))
    return values["status"]


def attempt(delivery_id: int, now: dt.datetime | None = None) -> str | None:
    """Claim the delivery and send it once: its status after, or ``None``
    when it was not due or another worker has it."""
    now = now or utcnow()
    if not claim(delivery_id, now):
        return None
    session = get_state().db.session
    row = session.execute(
        select(_D.attempts, _D.event_id, _D.payload, _E.id, _E.enabled, _E.kind, _E.url, _E.secret, _E.measurement_id)
        .join(_E, _E.id == _D.endpoint_id).where(_D.id == delivery_id)
    ).first()
    if row is None or not row.enabled:  # disabled since it was listed: it waits, uncounted
        session.execute(update(_D).where(_D.id == delivery_id, _D.claimed_at == now).values(
            status="pending", attempts=_D.attempts - 1, claimed_at=None,
        ))
        session.commit()
        return "pending"
    session.commit()
    a = _Attempt(delivery_id, row.id, row.attempts, row.event_id, row.payload, row.kind, row.url, row.secret,
                 row.measurement_id)
    status, error = _request(a)
    if error is None:
        _succeeded(session, a, status, now)
        outcome = "delivered"
    else:
        logger.info("Webhook delivery %s to endpoint %s failed (attempt %s): %s", delivery_id, a.endpoint_id,
                    a.attempts, error)
        outcome = _failed(session, a, status, error, now)
    session.commit()
    return outcome


def deliver(delivery_id: int) -> str | None:
    """The job behind "Resend" (and a delivery's own attempt)."""
    return attempt(int(delivery_id))


def deliver_due(limit: int = DUE_BATCH) -> dict[str, int]:
    """Attempt the deliveries that are due, oldest first, for enabled
    endpoints; counts by outcome."""
    session = get_state().db.session
    now = utcnow()
    ids = session.execute(
        select(_D.id).join(_E, _E.id == _D.endpoint_id).where(_E.enabled.is_(True), _due(now))
        .order_by(_D.next_attempt_at, _D.id).limit(limit)
    ).scalars().all()
    session.commit()
    counts: dict[str, int] = {}
    for delivery_id in ids:
        outcome = attempt(delivery_id) or "skipped"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def purge_finished() -> int:
    """Delete deliveries that ended more than :data:`KEEP_DAYS` days ago."""
    session = get_state().db.session
    deleted = session.execute(delete(_D).where(
        _D.status.in_(("delivered", "failed")), _D.created_at < utcnow() - dt.timedelta(days=KEEP_DAYS),
    )).rowcount
    session.commit()
    return deleted


def dispatch() -> dict[str, Any]:
    """The periodic job: new events become deliveries, due ones go out."""
    made = scan_all()
    sent = deliver_due()
    purge_finished()
    return {"made": made, "attempts": sent}


def resend(delivery: WebhookDelivery) -> None:
    """Send a delivery again now, whatever its status (a "Resend" press):
    it gets a fresh set of retries."""
    session = get_state().db.session
    session.execute(update(_D).where(_D.id == delivery.id, _D.status != "sending").values(
        status="pending", attempts=0, next_attempt_at=utcnow(), claimed_at=None,
    ))
    session.commit()
    enqueue(DELIVER, delivery.id)
