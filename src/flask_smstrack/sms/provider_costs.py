"""Prices that providers and imported delivery reports give each message,
made the campaign's cost.

A campaign priced per segment or per message keeps its price. Otherwise,
once any of its messages has a price (in the campaign's currency), its
cost is the sum of those prices: the ROI then counts what was paid.
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select, update

from ..models import Campaign, Recipient
from ..state import get_state

_r = Recipient.__table__.c
_c = Campaign.__table__.c


def apply_reported_costs(campaign_id: int) -> Decimal | None:
    """Set the campaign's cost to the sum of its messages' prices, when it
    has no price per segment or per message and some message has a price;
    the cost set, else ``None``."""
    session = get_state().db.session
    total = session.execute(
        select(func.sum(_r.cost)).where(_r.campaign_id == campaign_id, _r.cost.is_not(None))
    ).scalar()
    if total is None:
        session.commit()
        return None
    total = Decimal(total)
    changed = session.execute(
        update(Campaign.__table__)
        .where(_c.id == campaign_id, _c.cost_per_segment.is_(None), _c.cost_per_message.is_(None))
        .values(cost=total)
    ).rowcount
    session.commit()
    return total if changed else None
