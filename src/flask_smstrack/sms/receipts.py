"""Delivery receipts: a message's status only ever moves forward."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from ..models import Recipient, utcnow
from ..state import get_state

_recipients = Recipient.__table__
_r = _recipients.c


#: Statuses in the order a message goes through them; a receipt never moves
#: a message back, and the last four are final.
STATUS_RANK = {
    "accepted": 1,
    "scheduled": 1,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
    "read": 5,
}


def segment_count(value: Any) -> int | None:
    """A positive segment count from Twilio, else ``None`` (Twilio answers 0
    for messages sent through a Messaging Service)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def record_status(
    message_sid: str, status: str, *, error_code: str | None = None, segments: Any = None
) -> bool | None:
    """Store a delivery receipt: the message's new status, if it moves forward.

    A status of the same or a lower rank than the stored one changes nothing
    (a late ``sent`` after ``delivered``, the same receipt twice); the
    compare and the write are one ``UPDATE``, so receipts arriving at once
    are safe. Returns whether the status changed, or ``None`` when no
    recipient has this message SID (or the status is not a known one).
    """
    rank = STATUS_RANK.get(status)
    session = get_state().db.session
    if rank is None:
        return None
    values: dict[str, Any] = {"status": status, "status_at": utcnow()}
    if status in ("undelivered", "failed") and error_code:
        values["error_code"] = str(error_code)[:16]
    if (count := segment_count(segments)) is not None:
        values["segments"] = count
    lower = [name for name, r in STATUS_RANK.items() if r < rank]
    changed = session.execute(
        update(_recipients).where(_r.message_sid == message_sid, _r.status.in_(lower)).values(**values)
    ).rowcount
    session.commit()
    if changed:
        from ..integrations.events import emit_message_status

        emit_message_status(message_sid)
        return True
    known = session.execute(select(_r.id).where(_r.message_sid == message_sid)).first()
    session.commit()
    return False if known else None
