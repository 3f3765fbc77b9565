"""Who to text next: recipients of a campaign chosen by what they did (clicked, converted, not clicked...)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select

from ..models import Campaign, Click, Conversion
from ..state import get_state


@dataclass(frozen=True)
class AudienceMember:
    phone: str
    external_id: str | None
    attributes: dict[str, str]
    variant: str
    #: Device and country of the recipient's first click, if any.
    device: str | None
    country: str | None
    clicked_at: dt.datetime | None
    converted: bool


def audience(
    campaign: Campaign,
    segment: str = "all",
    *,
    variant: str | None = None,
    device: str | None = None,
    country: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[AudienceMember]:
    """The recipients a message went to, filtered for the next send.

    ``segment`` is ``all``, ``clicked`` (a human click from the recipient,
    forwards excepted), ``clicked_not_converted``, ``not_clicked`` or
    ``converted``. ``device`` and ``country`` filter on the recipient's first
    click, so they select clickers only; ``variant`` is a variant's name.
    """
    from ..models import SENT_CONDITION, Recipient

    session = get_state().db.session
    r, c, v = Recipient.__table__.c, Click.__table__.c, Conversion.__table__.c
    first = (
        select(c.recipient_id, func.min(c.id).label("click_pk"))
        .where(c.campaign_id == campaign.id, c.recipient_id.is_not(None), c.kind == "human")
        .group_by(c.recipient_id)
        .subquery()
    )
    first_click = Click.__table__.alias("first_click")
    fc = first_click.c
    converted = (
        select(v.recipient_id)
        .where(v.campaign_id == campaign.id, v.recipient_id.is_not(None))
        .distinct()
        .subquery()
    )
    names = {row.id: row.name for row in campaign.variants}
    query = (
        select(
            r.phone, r.external_id, r.attributes, r.variant_id, fc.device_type, fc.country, fc.created_at,
            converted.c.recipient_id.is_not(None).label("converted"),
        )
        .select_from(
            Recipient.__table__.outerjoin(first, first.c.recipient_id == r.id)
            .outerjoin(first_click, fc.id == first.c.click_pk)
            .outerjoin(converted, converted.c.recipient_id == r.id)
        )
        # Forgotten and erased numbers cannot be texted again.
        .where(r.campaign_id == campaign.id, r.phone.is_not(None), *SENT_CONDITION)
        .order_by(r.id)
    )
    clicked = first.c.recipient_id.is_not(None)
    is_converted = converted.c.recipient_id.is_not(None)
    if segment == "clicked":
        query = query.where(clicked)
    elif segment == "clicked_not_converted":
        query = query.where(clicked, ~is_converted)
    elif segment == "not_clicked":
        query = query.where(~clicked)
    elif segment == "converted":
        query = query.where(is_converted)
    if variant is not None:
        ids = [vid for vid, name in names.items() if name == variant]
        query = query.where(r.variant_id.in_(ids))
    if device is not None:
        query = query.where(fc.device_type == device.lower())
    if country is not None:
        query = query.where(fc.country == country.upper())
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    return [
        AudienceMember(
            phone, external_id, dict(attributes or {}), names.get(variant_id, ""), device_type, ctry, at, bool(conv)
        )
        for phone, external_id, attributes, variant_id, device_type, ctry, at, conv in session.execute(query)
    ]
