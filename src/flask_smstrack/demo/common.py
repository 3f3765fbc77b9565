"""What both demo campaigns share: the send time in the sender's zone, the
default owner, click ids and order ids, and how an unfinished demo is
removed."""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from ..models import Campaign, User, utcnow
from ..reports.rollups import reset as reset_rollups
from ..state import get_state
from ..tracking.clicks import click_id_at

#: Rows per insert and per transaction.
BATCH_SIZE = 5000

logger = logging.getLogger("flask_smstrack")


#: Clicks keep coming for this long after the send.
HORIZON = dt.timedelta(days=7)


#: Share of human clicks whose landing page reported back.
CONFIRMED_SHARE = 0.60


#: The sender's clock: the send is at 10:00 there.
_SENDER_ZONE = "America/New_York"


SEND_HOUR = 10


SHOP = "https://shop.example.com"


def _sender_zone() -> dt.tzinfo:
    try:
        return ZoneInfo(_SENDER_ZONE)
    except ZoneInfoNotFoundError:  # no zone database (Windows without tzdata)
        return dt.timezone(dt.timedelta(hours=-4))


def demo_send_time(now: dt.datetime | None = None) -> dt.datetime:
    """When the demo campaign was sent: 10:00 on a Tuesday in New York, the
    latest one at least a week before ``now``, so its week of clicks is over.
    Returned in UTC."""
    now = now or utcnow()
    zone = _sender_zone()
    latest = (now - HORIZON).astimezone(zone)
    day = latest.date() - dt.timedelta(days=(latest.weekday() - 1) % 7)
    sent = dt.datetime(day.year, day.month, day.day, SEND_HOUR, tzinfo=zone)
    if sent > latest:
        sent -= dt.timedelta(days=7)
    return sent.astimezone(dt.timezone.utc)


def default_owner_id() -> str | None:
    """The owner of a demo campaign when none is given: the first admin."""
    db = get_state().db
    admin = db.session.execute(
        select(User.id).where(User.is_admin.is_(True)).order_by(User.id).limit(1)
    ).scalar()
    return None if admin is None else str(admin)


def demo_click_id(micros: int, random_bytes: bytes) -> str:
    """A click id in the format of :func:`~.tracking.new_click_id`, for a
    click at ``micros`` microseconds after the epoch."""
    return click_id_at(micros // 1000, random_bytes)


def mark_sent(campaign: Campaign, sent_at: dt.datetime) -> None:
    """Mark a demo campaign sent, only now that its data is complete: a
    report that ran meanwhile saw a draft. The rows were written after their
    time, like replayed clicks: rollups a report made meanwhile are rebuilt."""
    campaign.sent_at = sent_at
    campaign.status = "sent"
    get_state().db.session.commit()
    reset_rollups(campaign.id)


def remove_unfinished(campaign_id: int, remove: Callable[[int], None]) -> None:
    """Remove what a failed or interrupted demo wrote, with ``remove``."""
    try:
        remove(campaign_id)
    except Exception:
        logger.exception("Could not remove the unfinished demo campaign %s", campaign_id)


def order_prefix(campaign_id: int) -> str:
    return f"DEMO-{campaign_id}-"
