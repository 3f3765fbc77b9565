"""Everything stored about one phone number: its export and its erasure.

A number is found in the recipients of every owner's campaigns, by its
E.164 form or, once forgotten, by its keyed hash (see
:func:`~flask_smstrack.sms.suppression.phone_hash`). From there come the
clicks on the recipient's own links, the conversions joined to them, and
the number's suppressions and opt-out history (kept by hash).

Erasure keeps each recipient row as an anonymous stub (status, segments,
variant and times) so that sent, delivered, cost and rates stay right;
clicks and conversions stay too, no longer joined to anyone; and a
suppression entry (the hash and last two digits) keeps the number from
ever being texted again.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import or_, select, update

from ..config import Keys
from ..models import (
    EVERY_OWNER,
    Campaign,
    Click,
    Conversion,
    Link,
    OptOutEvent,
    Recipient,
    Suppression,
    Variant,
    utcnow,
)
from ..schemas import api_value
from ..state import get_state
from .recipients import normalize_phone
from .suppression import is_number, phone_hash, phone_tail

#: Recipient columns erasure empties (``message_sid`` is replaced instead,
#: see :func:`erase_subject`).
ERASED_COLUMNS = (
    "phone", "phone_hash", "phone_tail", "external_id", "attributes", "message",
    "consent_source", "consent_at", "timezone",
)
#: The source of the suppression entries erasure adds.
ERASURE_SOURCE = "erasure"


def subject_phone(raw: str, region: str | None = None) -> str:
    """``raw`` in E.164 (``ValueError`` with a message to show if it is not a
    valid number); numbers without a country code take ``region`` or
    ``SMSTRACK_DEFAULT_REGION``."""
    return normalize_phone(raw, region or current_app.config[Keys.DEFAULT_REGION])


def _recipient_ids(phone: str, digest: str) -> list[int]:
    r = Recipient.__table__.c
    return list(
        get_state().db.session.execute(
            select(r.id).where(is_number(phone, digest)).order_by(r.id)
        ).scalars()
    )


def _when(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _money(value: Decimal | None) -> str | None:
    return api_value(value, "money")


def export_subject(phone: str) -> dict[str, Any]:
    """Everything stored about ``phone`` (E.164), across every owner, as a
    JSON-ready dict: ``recipients`` (with their campaign and message),
    ``links`` (the recipient's own short links), ``clicks``,
    ``conversions``, ``suppressions`` and ``opt_out_events``."""
    session = get_state().db.session
    digest = phone_hash(phone)
    ids = _recipient_ids(phone, digest)
    recipients = session.execute(
        select(Recipient, Campaign.name, Campaign.owner_id, Variant.name)
        .join(Campaign, Campaign.id == Recipient.campaign_id)
        .outerjoin(Variant, Variant.id == Recipient.variant_id)
        .where(Recipient.id.in_(ids))
        .order_by(Recipient.id)
    ).all()
    links = session.execute(select(Link).where(Link.recipient_id.in_(ids)).order_by(Link.id)).scalars().all()
    link_ids = [link.id for link in links]
    clicks = session.execute(
        select(Click).where(or_(Click.recipient_id.in_(ids), Click.link_id.in_(link_ids))).order_by(Click.id)
    ).scalars().all()
    conversions = session.execute(
        select(Conversion).where(Conversion.recipient_id.in_(ids)).order_by(Conversion.id)
    ).scalars().all()
    suppressions = session.execute(
        select(Suppression).where(Suppression.phone_hash == digest).order_by(Suppression.id)
    ).scalars().all()
    events = session.execute(
        select(OptOutEvent).where(OptOutEvent.phone_hash == digest).order_by(OptOutEvent.id)
    ).scalars().all()
    return {
        "phone": phone,
        "phone_hash": digest,
        "exported_at": utcnow().isoformat(),
        "recipients": [
            {
                "id": r.id, "campaign_id": r.campaign_id, "campaign_name": name, "owner_id": owner,
                "phone": r.phone, "forgotten": r.phone is None, "phone_tail": r.phone_tail,
                "external_id": r.external_id, "attributes": r.attributes or {}, "variant": variant,
                "message": r.message, "segments": r.segments, "status": r.status, "error_code": r.error_code,
                "message_sid": r.message_sid, "imported_at": _when(r.created_at), "sent_at": _when(r.sent_at),
                "status_at": _when(r.status_at), "consent_source": r.consent_source,
                "consent_at": _when(r.consent_at), "timezone": r.timezone,
            }
            for r, name, owner, variant in recipients
        ],
        "links": [
            {"code": link.code, "campaign_id": link.campaign_id, "recipient_id": link.recipient_id,
             "destination_url": link.destination_url, "created_at": _when(link.created_at)}
            for link in links
        ],
        "clicks": [
            {
                "click_id": c.click_id, "campaign_id": c.campaign_id, "recipient_id": c.recipient_id,
                "created_at": _when(c.created_at), "kind": c.kind, "device_type": c.device_type, "os": c.os,
                "browser": c.browser, "country": c.country, "ip": c.ip, "referrer_host": c.referrer_host,
            }
            for c in clicks
        ],
        "conversions": [
            {
                "id": c.id, "campaign_id": c.campaign_id, "recipient_id": c.recipient_id,
                "created_at": _when(c.created_at), "event": c.event, "revenue": _money(c.revenue),
                "currency": c.currency, "order_id": c.order_id, "refunded": _money(c.refunded), "trust": c.trust,
            }
            for c in conversions
        ],
        "suppressions": [
            {"owner_id": s.owner_id, "phone_tail": s.phone_tail, "source": s.source, "keyword": s.keyword,
             "created_at": _when(s.created_at)}
            for s in suppressions
        ],
        "opt_out_events": [
            {"owner_id": e.owner_id, "action": e.action, "source": e.source, "keyword": e.keyword,
             "campaign_id": e.campaign_id, "created_at": _when(e.created_at)}
            for e in events
        ],
    }


def erase_subject(phone: str) -> dict[str, int]:
    """Erase what is stored about ``phone`` (E.164) and suppress it for every
    owner that had it (for every owner if none has it and it is not
    suppressed yet).

    Returns how many rows changed per table: ``recipients`` (emptied to
    stubs), ``clicks`` and ``conversions`` (unjoined from them) and
    ``suppressions`` (added). A provider's message id is replaced by
    ``erased:<recipient id>``: the provider keeps the number under it, and
    whether a message had one tells apart messages the provider refused
    before sending. Delivery receipts that arrive later find no message.
    """
    session = get_state().db.session
    digest = phone_hash(phone)
    ids = _recipient_ids(phone, digest)
    r = Recipient.__table__.c
    owners = set(
        session.execute(
            select(Campaign.owner_id).join(Recipient, Recipient.campaign_id == Campaign.id).where(r.id.in_(ids))
        ).scalars()
    )
    owners = {owner or EVERY_OWNER for owner in owners}
    s = Suppression.__table__.c
    if not owners and session.execute(select(s.id).where(s.phone_hash == digest).limit(1)).first() is None:
        owners = {EVERY_OWNER}  # a number no campaign has (or still has): suppressed for everyone
    counts = {"recipients": 0, "clicks": 0, "conversions": 0, "suppressions": 0}
    if ids:
        counts["recipients"] = session.execute(
            update(Recipient.__table__).where(r.id.in_(ids)).values(dict.fromkeys(ERASED_COLUMNS))
        ).rowcount
        sids = session.execute(select(r.id).where(r.id.in_(ids), r.message_sid.is_not(None))).scalars().all()
        for rid in sids:
            session.execute(update(Recipient.__table__).where(r.id == rid).values(message_sid=f"erased:{rid}"))
        clicks = Click.__table__.c
        counts["clicks"] = session.execute(
            update(Click.__table__).where(clicks.recipient_id.in_(ids)).values(recipient_id=None)
        ).rowcount
        conversions = Conversion.__table__.c
        counts["conversions"] = session.execute(
            update(Conversion.__table__).where(conversions.recipient_id.in_(ids)).values(recipient_id=None)
        ).rowcount
    present = set(
        session.execute(select(s.owner_id).where(s.phone_hash == digest, s.owner_id.in_(owners))).scalars()
    )
    for owner in sorted(owners - present):
        session.add(Suppression(owner_id=owner, phone_hash=digest, phone_tail=phone_tail(phone), source=ERASURE_SOURCE))
        counts["suppressions"] += 1
    session.commit()
    return counts
