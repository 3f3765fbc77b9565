"""Refunds of verified conversions: all or part of their revenue, never more
than is left, with the rollups kept exact (see ``reports/rollup_edits.py``)."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select, update

from ..auth import Principal
from ..errors import Conflict, InvalidInput, NotFound
from ..models import Conversion, PurgedConversion, Refund, utcnow
from ..reports.rollup_edits import lock_campaigns, shift_conversion
from ..state import get_state


@dataclass
class RefundResult:
    refund: Refund
    conversion: Conversion
    #: The refund's external id was already recorded: nothing changed.
    duplicate: bool


def refund_conversion(
    conversion_id: int,
    principal: Principal,
    *,
    amount: Decimal | None = None,
    reason: str | None = None,
    external_id: str | None = None,
) -> RefundResult:
    """Refund ``amount`` (default: all that is left) of a verified
    conversion that ``principal`` owns, and commit.

    Raises :class:`~.errors.NotFound` for a conversion that is not the
    principal's (the same answer as for one that does not exist),
    :class:`~.errors.Conflict` for an unverified one, one without revenue,
    one refunded in full or one a purge deleted, and :class:`~.errors.InvalidInput` for an
    amount of 0 or more than is left. A replay with the same
    ``external_id`` changes nothing and returns the stored refund.
    """
    session = get_state().db.session
    row = session.get(Conversion, conversion_id, with_for_update=True, populate_existing=True)
    if row is None:
        purged = session.get(PurgedConversion, conversion_id)
        if purged is not None and (principal.is_admin or purged.owner_id == principal.owner_id):
            raise Conflict({"conversion_id": [
                f"Conversion {conversion_id} was purged (retention): a refund can no longer be "
                "recorded for it. The reports keep its counts."
            ]})
    if row is None or not (principal.is_admin or row.owner_id == principal.owner_id):
        raise NotFound({"conversion_id": [f"No conversion {conversion_id}."]})
    if external_id is not None:
        stored = session.execute(
            select(Refund).where(Refund.conversion_id == row.id, Refund.external_id == external_id)
        ).scalar_one_or_none()
        if stored is not None:
            session.rollback()
            return RefundResult(stored, row, True)
    if row.trust != "verified":
        raise Conflict({"conversion_id": ["Only verified conversions can be refunded: this one came from a browser."]})
    if row.revenue is None or row.currency is None:
        raise Conflict({"conversion_id": ["This conversion has no revenue to refund."]})
    left = row.revenue - row.refunded
    if left <= 0:
        raise Conflict({"conversion_id": ["This conversion is already refunded in full."]})
    amount = left if amount is None else amount
    if amount <= 0:
        raise InvalidInput({"amount": ["Must be more than 0."]})
    if amount > left:
        raise InvalidInput({"amount": [f"At most {left:f} {row.currency} is left to refund."]})

    lock_campaigns(session, [row.campaign_id])
    shift_conversion(session, row.id, -1)
    changed = session.execute(
        update(Conversion)
        .where(Conversion.id == row.id, Conversion.refunded + amount <= Conversion.revenue)
        .values(refunded=Conversion.refunded + amount)
    ).rowcount
    if not changed:  # refunded meanwhile (SQLite takes no row lock)
        session.rollback()
        raise Conflict({"amount": ["The conversion was refunded meanwhile: read it again."]})
    refund = Refund(
        conversion_id=row.id, amount=amount, currency=row.currency, reason=reason, external_id=external_id,
        created_at=utcnow(),
    )
    session.add(refund)
    session.flush()
    shift_conversion(session, row.id, 1)
    session.commit()
    session.refresh(row)
    return RefundResult(refund, row, False)
