"""A sale a payment provider reports, stored as a verified conversion, and
its refunds.

A sale is the conversion ``purchase`` with the provider's order id (one id
for every event of one payment), the provider as its ``source``, and the
click the shop passed along (a click id in the checkout's metadata or the
order's attributes). The owner is the click's campaign owner; a sale
without a known click is stored unattributed, with no owner, as the Python
API does without ``owner_id``.

Providers may report one payment twice, once with the click id and once
without (Stripe's Checkout Session and its PaymentIntent), in any order: the
first one seen is kept, and an attributed sale takes in the unattributed
one of the same order id (its refunds come with it), so it counts once.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ..auth import Principal
from ..errors import Conflict, InvalidInput
from ..models import NO_OWNER, Conversion, Refund
from ..reports.rollup_edits import lock_campaigns, shift_conversion
from ..schemas import ConversionSchema, RefundOutSchema
from ..state import get_state
from ..tracking.conversions import find_click, record_conversion
from ..tracking.refunds import refund_conversion

#: The event of every sale.
EVENT = "purchase"


@dataclass
class Outcome:
    """What one provider event did: its webhook's answer."""

    #: ``recorded``, ``refunded`` or ``ignored``.
    status: str
    #: Why it was ignored.
    reason: str | None = None
    body: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        if self.status == "ignored":
            return {"ignored": self.reason}
        return {"status": self.status, **self.body}


def ignored(reason: str) -> Outcome:
    return Outcome("ignored", reason)


def record_sale(
    *, source: str, order_id: str, revenue: Decimal | None, currency: str | None, click_ids: Iterable[str | None]
) -> Outcome:
    """Store the sale ``order_id`` verified, attributed to the first of
    ``click_ids`` that is a click; a replay changes nothing.
    :class:`.InvalidInput` when the amount or currency cannot be stored."""
    raw = {"event": EVENT, "order_id": order_id, "revenue": revenue, "currency": currency}
    try:
        data = ConversionSchema().load({k: v for k, v in raw.items() if v is not None})
    except ValidationError as err:
        raise InvalidInput(err.messages) from None
    candidates = [c for c in click_ids if c]
    with Session(bind=get_state().db.engine, expire_on_commit=False) as session:  # reads, ended at once
        if not any(find_click(c, session) is not None for c in candidates):
            stored = _sale(source, data["order_id"], session)
            if stored is not None:  # the same payment, seen before
                return _recorded(stored, duplicate=True)
    result = record_conversion(data, source=source, trust="verified", fallback_click_ids=candidates)
    if not (result.duplicate or result.purged):
        # Each side looks for the other after its own commit, so that of two
        # events of one payment stored at the same moment (one with the click
        # id, one without) the later one folds them into one sale.
        attributed = result.conversion.id if result.attributed else _attributed_twin(result.conversion, source)
        if attributed is not None:
            _take_in_unattributed(attributed, source)
            if not result.attributed:  # folded into the sale the other event stored
                return _recorded(get_state().db.session.get(Conversion, attributed), duplicate=True)
    return _recorded(result.conversion, duplicate=result.duplicate or result.purged)


def refund_sale(
    *,
    source: str,
    order_id: str,
    currency: str | None,
    external_id: str,
    amount: Decimal | None = None,
    refunded_total: Decimal | None = None,
    reason: str | None = None,
) -> Outcome:
    """Record the refund ``external_id`` of the sale ``order_id``: ``amount``,
    or what ``refunded_total`` (all the provider has refunded of it so far)
    adds to what is already recorded, never more than is left. A replay of
    ``external_id``, or a total already counted, changes nothing.
    ``currency`` must be the sale's (``None``: whatever the sale's is)."""
    sale = _sale(source, order_id)
    if sale is None:
        return ignored(f"no sale with the order id {order_id!r} was recorded")
    if sale.revenue is None or (currency and sale.currency != currency.upper()):
        return ignored(f"the sale {order_id!r} has no revenue in {currency or 'any currency'}")
    left = sale.revenue - sale.refunded
    if refunded_total is not None:
        amount = min(refunded_total, sale.revenue) - sale.refunded
    amount = min(amount, left) if amount is not None else None
    session = get_state().db.session
    if amount is None or amount <= 0:
        known = session.execute(
            select(Refund).where(Refund.conversion_id == sale.id, Refund.external_id == external_id)
        ).scalar_one_or_none()
        session.rollback()
        if known is None:
            return ignored(f"nothing more to refund of {order_id!r}: already counted")
        return _refunded(known, duplicate=True)
    try:
        result = refund_conversion(
            sale.id, Principal(owner_id=sale.owner_id), amount=amount, reason=reason, external_id=external_id
        )
    except Conflict as err:  # refunded meanwhile
        return ignored(str(err.description))
    return _refunded(result.refund, duplicate=result.duplicate)


def _recorded(conversion: Conversion, *, duplicate: bool) -> Outcome:
    return Outcome("recorded", body={
        "conversion_id": conversion.id, "attributed": conversion.campaign_id is not None, "duplicate": duplicate,
    })


def _refunded(refund: Refund, *, duplicate: bool) -> Outcome:
    return Outcome("refunded", body=dict(RefundOutSchema().dump(refund), duplicate=duplicate))


def _sale(source: str, order_id: str, session: Session | None = None) -> Conversion | None:
    """The stored sale ``order_id`` of ``source``, an attributed one first."""
    session = session or get_state().db.session
    return session.execute(
        select(Conversion)
        .where(Conversion.source == source, Conversion.event == EVENT, Conversion.order_id == order_id)
        .order_by((Conversion.owner_id == NO_OWNER).asc(), Conversion.id)
        .limit(1)
    ).scalar_one_or_none()


def _attributed_twin(conversion: Conversion, source: str) -> int | None:
    """The id of an attributed sale with the order id of the unattributed
    ``conversion``, if one was stored meanwhile."""
    session = get_state().db.session
    twin = session.execute(
        select(Conversion.id)
        .where(Conversion.source == source, Conversion.event == conversion.event,
               Conversion.order_id == conversion.order_id, Conversion.click_pk.is_not(None))
        .order_by(Conversion.id)
        .limit(1)
    ).scalar_one_or_none()
    session.rollback()
    return twin


def _take_in_unattributed(conversion_id: int, source: str) -> None:
    """Fold the unattributed sale with the order id of the attributed
    ``conversion_id`` into it: its refunds move over, and it is deleted."""
    session = get_state().db.session
    row = session.get(Conversion, conversion_id, with_for_update=True, populate_existing=True)
    twin = session.execute(
        select(Conversion).where(
            Conversion.source == source, Conversion.event == row.event, Conversion.order_id == row.order_id,
            Conversion.owner_id == NO_OWNER, Conversion.click_pk.is_(None), Conversion.id != row.id,
        ).with_for_update()
    ).scalar_one_or_none()
    if twin is None:
        session.rollback()
        return
    lock_campaigns(session, [row.campaign_id])
    shift_conversion(session, row.id, -1)
    session.execute(update(Refund).where(Refund.conversion_id == twin.id).values(conversion_id=row.id))
    refunded = row.refunded + twin.refunded
    if row.revenue is not None:
        refunded = min(refunded, row.revenue)
    session.execute(update(Conversion).where(Conversion.id == row.id).values(refunded=refunded))
    session.execute(delete(Conversion).where(Conversion.id == twin.id))
    shift_conversion(session, row.id, 1)
    session.commit()
