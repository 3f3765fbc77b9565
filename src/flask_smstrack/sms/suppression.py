"""Numbers that must not be texted, and the keyed hash that stands for a
number once it is opted out, forgotten or erased.

A number's hash is HMAC-SHA256 of its E.164 form under
``SMSTRACK_SIGNING_KEY`` (or ``SECRET_KEY``): the same number always gives
the same hash, so a suppression, a forgotten recipient and a new import still
match, while the table alone does not give the number back.

A campaign checks the suppressions of its owner and those that hold for
every owner (:data:`~flask_smstrack.models.EVERY_OWNER`).
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Callable, Iterable

from sqlalchemy import or_, select, update

from ..models import EVERY_OWNER, Campaign, Recipient, Suppression, utcnow
from ..state import get_state, signing_key

_SALT = b"smstrack-phone\x00"
#: Hashes looked up per query.
CHUNK = 500


def phone_hasher() -> Callable[[str], str]:
    """A function from an E.164 number to its hash, with the key read once
    (for imports of many numbers)."""
    key = hmac.new(signing_key("Phone number hashes").encode(), _SALT, hashlib.sha256).digest()

    def digest(phone: str) -> str:
        return hmac.new(key, phone.encode(), hashlib.sha256).hexdigest()

    return digest


def phone_hash(phone: str) -> str:
    """The keyed hash of one number in E.164."""
    return phone_hasher()(phone)


def phone_tail(phone: str) -> str:
    """The last two digits of a number, kept beside its hash."""
    return phone[-2:]


def owners_of(owner_id: str | None) -> tuple[str, ...]:
    """The suppression owners that hold for a campaign of ``owner_id``."""
    return (EVERY_OWNER,) if not owner_id else (owner_id, EVERY_OWNER)


def is_number(phone: str, digest: str):
    """The condition on recipients that hold this number: by the number, or
    by its hash ``digest`` once the number was forgotten."""
    r = Recipient.__table__.c
    return or_(r.phone == phone, r.phone_hash == digest)


def suppressed_hashes(owner_id: str | None, hashes: Iterable[str]) -> set[str]:
    """Those of ``hashes`` suppressed for a campaign of ``owner_id``."""
    table = Suppression.__table__
    session = get_state().db.session
    wanted = list(dict.fromkeys(hashes))
    found: set[str] = set()
    for start in range(0, len(wanted), CHUNK):
        found.update(
            session.execute(
                select(table.c.phone_hash).where(
                    table.c.owner_id.in_(owners_of(owner_id)),
                    table.c.phone_hash.in_(wanted[start:start + CHUNK]),
                )
            ).scalars()
        )
    return found


def suppressed_phones(owner_id: str | None, phones: Iterable[str]) -> set[str]:
    """Those of ``phones`` (E.164) suppressed for a campaign of ``owner_id``."""
    digest = phone_hasher()
    by_hash = {digest(p): p for p in phones}
    return {by_hash[h] for h in suppressed_hashes(owner_id, by_hash)}


def is_suppressed(owner_id: str | None, phone: str) -> bool:
    """Whether one number is suppressed for a campaign of ``owner_id``."""
    return bool(suppressed_phones(owner_id, [phone]))


#: The status of a recipient whose number is suppressed: never prepared,
#: exported or sent, and back to ``pending`` once it no longer is.
SUPPRESSED = "suppressed"
#: Statuses a recipient leaves for :data:`SUPPRESSED` (and the one it comes back to first).
_HELD_FROM = ("pending", "ready")


def suppressed_recipients(owner_id: str | None, rows: Iterable) -> set[int]:
    """The ids of ``rows`` (with ``id``, ``phone``, ``phone_hash``) whose
    number is suppressed for a campaign of ``owner_id``."""
    digest = phone_hasher()
    hashes = {row.id: row.phone_hash or digest(row.phone) for row in rows if row.phone_hash or row.phone}
    held = suppressed_hashes(owner_id, hashes.values())
    return {i for i, h in hashes.items() if h in held}


def hold_suppressed(campaign_id: int) -> int:
    """Move the campaign's unsent recipients whose number is suppressed to
    :data:`SUPPRESSED`, and those no longer suppressed (after a START) back
    to ``pending``, committed. Returns how many are suppressed."""
    session = get_state().db.session
    owner = session.execute(select(Campaign.owner_id).where(Campaign.id == campaign_id)).scalar()
    table = Recipient.__table__
    r = table.c
    rows = session.execute(
        select(r.id, r.phone, r.phone_hash, r.status)
        .where(r.campaign_id == campaign_id, r.status.in_((*_HELD_FROM, SUPPRESSED)))
    ).all()
    held = suppressed_recipients(owner, rows)
    now = utcnow()
    moves = (
        ([row.id for row in rows if row.id in held and row.status != SUPPRESSED], _HELD_FROM, SUPPRESSED),
        ([row.id for row in rows if row.id not in held and row.status == SUPPRESSED], (SUPPRESSED,), "pending"),
    )
    for ids, before, after in moves:
        for start in range(0, len(ids), CHUNK):
            session.execute(
                update(table)
                .where(r.id.in_(ids[start:start + CHUNK]), r.status.in_(before))
                .values(status=after, status_at=now)
            )
    session.commit()
    return len(held)


def held_at_send(owner_id: str | None, recipient_id: int, phone: str) -> bool:
    """Whether a recipient claimed for sending (``sending``, no message id)
    is suppressed now; if so it becomes :data:`SUPPRESSED`, committed.
    One indexed look-up: a send in progress honours a STOP that came since
    the campaign was prepared."""
    if not is_suppressed(owner_id, phone):
        return False
    session = get_state().db.session
    r = Recipient.__table__.c
    session.execute(
        update(Recipient.__table__)
        .where(r.id == recipient_id, r.status == "sending", r.message_sid.is_(None))
        .values(status=SUPPRESSED, sent_at=None, status_at=utcnow())
    )
    session.commit()
    return True
