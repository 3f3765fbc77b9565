"""What preparing left: the ready messages and their counts, exporting
them for another SMS platform, and the recipients' totals per variant."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import and_, case, func, select, update

from ..models import SENT_CONDITION, Campaign, Recipient, utcnow
from ..state import get_state
from .messages import UNSENT, variant_names
from .suppression import SUPPRESSED, hold_suppressed, suppressed_recipients


def ready_counts(campaign_id: int) -> tuple[int, int]:
    """Messages rendered and not yet sent or exported, and their segments."""
    r = Recipient.__table__.c
    messages, segments = get_state().db.session.execute(
        select(func.count(), func.coalesce(func.sum(r.segments), 0)).where(
            r.campaign_id == campaign_id, r.status == "ready", r.phone.is_not(None)
        )
    ).one()
    return int(messages), int(segments)


def mark_exported(campaign_id: int) -> int:
    """Count the ready messages as sent through another platform: they were
    downloaded for it. Returns how many."""
    r = Recipient.__table__.c
    session = get_state().db.session
    hold_suppressed(campaign_id)
    changed = session.execute(
        update(Recipient.__table__)
        .where(r.campaign_id == campaign_id, r.status == "ready", r.phone.is_not(None))
        .values(status="exported", status_at=utcnow())
    ).rowcount
    session.commit()
    return changed


def message_rows(campaign: Campaign) -> list[tuple[str, str, str]]:
    """``(phone, message, variant)`` of every rendered message, by recipient,
    but those of suppressed numbers not sent yet."""
    names = variant_names(campaign)
    r = Recipient.__table__.c
    rows = get_state().db.session.execute(
        select(r.id, r.phone, r.phone_hash, r.status, r.message, r.variant_id)
        .where(r.campaign_id == campaign.id, r.message.is_not(None), r.phone.is_not(None), r.status != SUPPRESSED)
        .order_by(r.id)
    ).all()
    held = suppressed_recipients(campaign.owner_id, [row for row in rows if row.status in UNSENT])
    return [(row.phone, row.message, names.get(row.variant_id, "")) for row in rows if row.id not in held]


def recipient_totals(campaign_id: int) -> dict[int | None, Counter]:
    """Per variant id: ``recipients``, a count per status, and ``messages``,
    ``segments`` and ``receipts`` (messages with a delivery receipt) of the
    messages that count as sent."""
    r = Recipient.__table__.c
    sent = and_(*SENT_CONDITION)
    receipt = and_(r.message_sid.is_not(None), r.status.in_(RECEIPT_STATUSES))
    totals: dict[int | None, Counter] = defaultdict(Counter)
    rows = get_state().db.session.execute(
        select(
            r.variant_id, r.status, func.count(),
            func.sum(case((sent, 1), else_=0)),
            func.sum(case((sent, r.segments), else_=0)),
            func.sum(case((receipt, 1), else_=0)),
        )
        .where(r.campaign_id == campaign_id)
        .group_by(r.variant_id, r.status)
    )
    for variant_id, status, n, messages, segments, receipts in rows:
        t = totals[variant_id]
        t["recipients"] += n
        t[status] += n
        t["messages"] += int(messages or 0)
        t["segments"] += int(segments or 0)
        t["receipts"] += int(receipts or 0)
    return dict(totals)


#: Statuses only a delivery receipt sets.
RECEIPT_STATUSES = ("delivered", "undelivered", "failed")


@dataclass
class SendPlan:
    """What sending a prepared campaign would do, for a confirmation."""

    #: Messages ready to send.
    messages: int
    segments: int
    #: Messages in an unknown state (see the module doc).
    unknown: int
    #: ``cost_per_segment`` x segments, when the campaign has that price.
    cost: Decimal | None
    currency: str


def unknown_count(campaign_id: int) -> int:
    """Messages of the campaign in an unknown state."""
    r = Recipient.__table__.c
    return get_state().db.session.execute(
        select(func.count()).where(r.campaign_id == campaign_id, r.status == "sending", r.message_sid.is_(None))
    ).scalar_one()


def send_plan(campaign: Campaign) -> SendPlan:
    """The messages, segments and cost of the campaign's ready recipients."""
    messages, segments = ready_counts(campaign.id)
    price = campaign.cost_per_segment
    cost = price * segments if price is not None else None
    return SendPlan(messages, segments, unknown_count(campaign.id), cost, campaign.currency)
