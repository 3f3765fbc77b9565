"""Landing confirmations and conversions: joined to their click, deduplicated
by order id, money kept as ``Decimal``."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from ..config import Keys
from ..models import Click, Conversion, utcnow
from ..schemas import CLICK_ID_RE
from ..state import get_state


def confirm_landing(click_id: str) -> bool:
    """Mark a click human-confirmed: the snippet ran on the landing page.

    Returns whether the click exists. The campaign's rollup is kept in step
    (under its lock) when the click was already rolled up.
    """
    from ..reports.rollups import confirm_in_rollup, lock_state

    session = get_state().db.session
    click = session.execute(
        select(Click.id, Click.campaign_id, Click.created_at, Click.kind, Click.human_confirmed).where(
            Click.click_id == click_id
        )
    ).first()
    if click is None:
        return False
    if click.human_confirmed:
        return True
    lock_state(click.campaign_id)
    changed = session.execute(
        update(Click).where(Click.id == click.id, Click.human_confirmed.is_(False)).values(human_confirmed=True)
    ).rowcount
    if changed:
        confirm_in_rollup(click)
    session.commit()
    return True


def find_click(click_id: str | None) -> Click | None:
    """The click with this public id, if it is within the attribution window."""
    if not click_id or not CLICK_ID_RE.match(click_id):
        return None
    db = get_state().db
    click = db.session.execute(select(Click).where(Click.click_id == click_id)).scalar_one_or_none()
    if click is None:
        return None
    days = current_app.config[Keys.ATTRIBUTION_WINDOW_DAYS]
    if click.created_at < utcnow() - dt.timedelta(days=days):
        return None
    return click


def _attribute(click_id: str | None) -> Click | None:
    click = find_click(click_id)
    if click is None or current_app.config[Keys.ATTRIBUTION_MODEL] != "first":
        return click
    days = current_app.config[Keys.ATTRIBUTION_WINDOW_DAYS]
    first = get_state().db.session.execute(
        select(Click)
        .where(
            or_(Click.visitor_id == click.visitor, Click.click_id == click.visitor),
            Click.kind == "human",
            Click.created_at >= utcnow() - dt.timedelta(days=days),
        )
        .order_by(Click.created_at, Click.id)
        .limit(1)
    ).scalar_one_or_none()
    return first or click


@dataclass
class ConversionResult:
    conversion: Conversion
    duplicate: bool

    @property
    def attributed(self) -> bool:
        return self.conversion.click_pk is not None


def record_conversion(
    data: dict[str, Any],
    *,
    source: str,
    trust: str,
    fallback_click_id: str | None = None,
    click_filter=None,
) -> ConversionResult:
    """Store one validated conversion (see :class:`~.schemas.ConversionSchema`).

    A replay of an ``(event, order_id)`` pair already stored changes nothing
    and returns the stored conversion with ``duplicate=True``; the database's
    unique constraint decides, so concurrent replays are safe too.
    ``click_filter`` may reject a click (for API keys that may not see its
    campaign): the conversion is then stored as unattributed.
    """
    db = get_state().db
    event, order_id = data.get("event") or "conversion", data.get("order_id")
    if order_id is not None:
        existing = _find_order(event, order_id)
        if existing is not None:
            return ConversionResult(existing, True)
    reported = data.get("click_id") or fallback_click_id
    click = _attribute(reported)
    if click is not None and click_filter is not None and not click_filter(click):
        click = None
    revenue: Decimal | None = data.get("revenue")
    conversion = Conversion(
        created_at=utcnow(),
        click_pk=click.id if click else None,
        reported_click_id=reported if reported and CLICK_ID_RE.match(reported) else None,
        campaign_id=click.campaign_id if click else None,
        link_id=click.link_id if click else None,
        recipient_id=click.recipient_id if click else None,
        variant_id=click.variant_id if click else None,
        event=event,
        revenue=revenue,
        currency=data.get("currency"),
        order_id=order_id,
        source=source,
        trust=trust,
    )
    db.session.add(conversion)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        existing = _find_order(event, order_id) if order_id is not None else None
        if existing is None:
            raise
        return ConversionResult(existing, True)
    return ConversionResult(conversion, False)


def _find_order(event: str, order_id: str) -> Conversion | None:
    return get_state().db.session.execute(
        select(Conversion).where(Conversion.event == event, Conversion.order_id == order_id)
    ).scalar_one_or_none()
