"""Forgetting recipients' numbers once a campaign is over
(``SMSTRACK_FORGET_PHONES_AFTER_DAYS``).

A campaign is over that many days after its last message: the latest
``sent_at`` of its recipients, else the campaign's own ``sent_at``. A
campaign never sent is never forgotten. Its recipients' numbers are then
replaced by their keyed hash and last two digits; everything else stays,
so its reports do not change, a later import still merges with them, and
an opt-out or an erasure still finds them by hash.

Recipients never sent by then are forgotten too: they can no longer be
sent to (a number that must still be texted belongs in a new campaign).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import bindparam, case, func, select, update

from ..config import Keys
from ..models import Campaign, Recipient, utcnow
from ..state import get_state
from .messages import UNSENT
from .suppression import phone_hasher, phone_tail

BATCH = 2000


@dataclass
class ForgetResult:
    #: The campaigns whose numbers were (or, in a dry run, would be) forgotten.
    campaigns: list[int] = field(default_factory=list)
    #: Numbers forgotten.
    recipients: int = 0
    #: Of these, recipients whose message was never sent.
    unsent: int = 0
    #: Before this, a campaign's last message makes it due.
    cutoff: dt.datetime | None = None


def forget_due_phones(now: dt.datetime | None = None, dry_run: bool = False) -> ForgetResult:
    """Forget the numbers of every campaign whose last message is older than
    ``SMSTRACK_FORGET_PHONES_AFTER_DAYS`` (nothing when unset); with
    ``dry_run``, only count them."""
    result = ForgetResult()
    days = current_app.config[Keys.FORGET_PHONES_AFTER_DAYS]
    if days is None:
        return result
    now = now or utcnow()
    result.cutoff = now - dt.timedelta(days=int(days))
    session = get_state().db.session
    r = Recipient.__table__.c
    c = Campaign.__table__.c
    with_phones = (
        select(r.campaign_id, func.max(r.sent_at).label("last_sent"), func.count().label("n"),
               func.sum(case((r.status.in_(UNSENT), 1), else_=0)).label("unsent"))
        .where(r.phone.is_not(None))
        .group_by(r.campaign_id)
        .subquery()
    )
    any_sent = select(r.campaign_id, func.max(r.sent_at).label("last")).group_by(r.campaign_id).subquery()
    due = session.execute(
        select(c.id, with_phones.c.n, with_phones.c.unsent)
        .join(with_phones, with_phones.c.campaign_id == c.id)
        .outerjoin(any_sent, any_sent.c.campaign_id == c.id)
        .where(func.coalesce(any_sent.c.last, c.sent_at) < result.cutoff)
        .order_by(c.id)
    ).all()
    for campaign_id, n, unsent in due:
        result.campaigns.append(campaign_id)
        result.recipients += n
        result.unsent += int(unsent or 0)
    if dry_run or not due:
        session.rollback()
        return result
    digest = phone_hasher()
    forget = (
        update(Recipient.__table__)
        .where(r.id == bindparam("rid"))
        .values(phone=None, phone_hash=bindparam("h"), phone_tail=bindparam("t"))
    )
    for campaign_id in result.campaigns:
        rows = session.execute(
            select(r.id, r.phone).where(r.campaign_id == campaign_id, r.phone.is_not(None))
        ).all()
        params = [{"rid": rid, "h": digest(phone), "t": phone_tail(phone)} for rid, phone in rows]
        for start in range(0, len(params), BATCH):
            session.execute(forget, params[start:start + BATCH])
        session.execute(update(Campaign.__table__).where(c.id == campaign_id).values(phones_forgotten_at=now))
        session.commit()
    return result
