"""Landing confirmations and conversions: joined to their click, deduplicated
by order id per owner and event, money kept as ``Decimal``.

Trust: a conversion from a browser is ``unverified``; one from an API key,
the host's code or with a conversion token is ``verified``. A verified
conversion for an order id that an unverified one holds upgrades that row
(the verified revenue, currency and click replace the browser's); an
unverified one never changes or blocks a verified one.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Sequence

from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ..auth import Principal
from ..config import Keys
from ..models import NO_OWNER, Campaign, Click, Conversion, PurgedConversion, utcnow
from ..reports.rollup_edits import drop_empty, lock_campaigns, shift_conversion
from ..reports.rollups import dialect_insert
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


def find_click(click_id: str | None, session: Session | None = None) -> Click | None:
    """The click with this public id, if it is within the attribution window."""
    if not click_id or not CLICK_ID_RE.match(click_id):
        return None
    session = session or get_state().db.session
    with session.no_autoflush:  # a read: the caller's pending changes stay unflushed
        click = session.execute(select(Click).where(Click.click_id == click_id)).scalar_one_or_none()
    if click is None:
        return None
    days = current_app.config[Keys.ATTRIBUTION_WINDOW_DAYS]
    if click.created_at < utcnow() - dt.timedelta(days=days):
        return None
    return click


def _attribute(click_id: str | None, session: Session) -> Click | None:
    click = find_click(click_id, session)
    if click is None or current_app.config[Keys.ATTRIBUTION_MODEL] != "first":
        return click
    days = current_app.config[Keys.ATTRIBUTION_WINDOW_DAYS]
    first = session.execute(
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
    #: The order id was already stored for this owner and event, and
    #: nothing changed.
    duplicate: bool
    #: An unverified conversion with this order id became this verified one.
    upgraded: bool = False
    #: The order id is one of a purged conversion: ``conversion`` is what
    #: the purge kept of it (not stored; no click), and nothing changed.
    purged: bool = False

    @property
    def attributed(self) -> bool:
        if self.purged:
            return self.conversion.campaign_id is not None
        return self.conversion.click_pk is not None


def record_conversion(
    data: dict[str, Any],
    *,
    source: str,
    trust: str,
    scope: Principal | None = None,
    owner_id: str | None = None,
    fallback_click_ids: Sequence[str | None] = (),
    created_at: dt.datetime | None = None,
) -> ConversionResult:
    """Store one validated conversion (see :class:`~.schemas.ConversionSchema`).

    The click is the one ``data`` names, else the first of
    ``fallback_click_ids`` (cookies) that is a click. ``scope``, for API
    keys and their tokens, limits the clicks to the campaigns it may see (a
    click of another owner's campaign is left out, and the conversion is
    stored unattributed). The owner is the campaign owner of an attributed
    conversion, else ``owner_id``, else the scope's owner, else nobody.

    A replay of an order id stored for the same owner and event changes
    nothing and returns the stored conversion with ``duplicate=True`` (the
    database's unique constraint decides, so concurrent replays are safe),
    unless a verified conversion replaces an unverified one (``upgraded``).

    ``created_at`` is when it was received, for one replayed from the spool
    (default: now); one older than its campaign's rollup cut is added to
    the rollups, under the campaign's lock.

    It works in a database session of its own, committed before it
    returns: the caller's ``db.session`` is neither flushed, committed nor
    rolled back.
    """
    with Session(bind=get_state().db.engine, expire_on_commit=False) as session:
        result = _record(session, data, source, trust, scope, owner_id, fallback_click_ids, created_at)
        session.commit()
        return result


def _record(session, data, source, trust, scope, owner_id, fallback_click_ids, created_at=None) -> ConversionResult:
    event, order_id = data.get("event") or "conversion", data.get("order_id")
    candidates = [data["click_id"]] if data.get("click_id") else [c for c in fallback_click_ids if c]
    reported, click = (candidates or [None])[0], None
    for candidate in candidates:
        click = _attribute(candidate, session)
        if click is not None:
            reported = candidate
            break
    owner = owner_id or (scope.owner_id if scope is not None else NO_OWNER)
    if click is not None:
        campaign = session.get(Campaign, click.campaign_id)
        if scope is not None and not scope.can_see(campaign):
            click = None
        else:
            owner = campaign.owner_id or NO_OWNER
    late = created_at is not None and click is not None
    if late:
        # Before the insert, so that a refresh cannot roll it up meanwhile.
        lock_campaigns(session, [click.campaign_id])
    values = {
        "created_at": created_at or utcnow(),
        "owner_id": owner,
        "click_pk": click.id if click else None,
        "reported_click_id": reported if reported and CLICK_ID_RE.match(reported) else None,
        "campaign_id": click.campaign_id if click else None,
        "link_id": click.link_id if click else None,
        "recipient_id": click.recipient_id if click else None,
        "variant_id": click.variant_id if click else None,
        "event": event,
        "revenue": data.get("revenue"),
        "currency": data.get("currency"),
        "order_id": order_id,
        "source": source,
        "trust": trust,
        "refunded": Decimal(0),
    }
    if order_id is None:
        conversion = Conversion(**values)
        session.add(conversion)
        session.flush()
        if late:
            shift_conversion(session, conversion.id, 1)
        return ConversionResult(conversion, False)
    existing = _find_order(session, owner, event, order_id)
    if existing is None:
        purged = _find_purged_order(session, owner, event, order_id)
        if purged is not None:
            return ConversionResult(purged, True, purged=True)
        insert = dialect_insert(session.get_bind().dialect.name)
        new_id = session.execute(
            insert(Conversion.__table__).values(**values).on_conflict_do_nothing().returning(Conversion.id)
        ).scalar()
        if new_id is not None:
            if late:
                shift_conversion(session, new_id, 1)
            return ConversionResult(session.get(Conversion, new_id), False)
        # Stored meanwhile by a concurrent request.
        existing = _find_order(session, owner, event, order_id)
    if trust != "verified" or existing.trust == "verified":
        return ConversionResult(existing, True)
    return _upgrade(session, existing.id, values)


#: What a verified conversion takes over from the unverified one it upgrades;
#: the click's columns too when it names a click.
_UPGRADED = ("trust", "source", "revenue", "currency")
_CLICK_COLUMNS = ("click_pk", "reported_click_id", "campaign_id", "link_id", "recipient_id", "variant_id")


def _upgrade(session: Session, conversion_id: int, values: dict[str, Any]) -> ConversionResult:
    """Make the unverified conversion ``conversion_id`` the verified one
    described by ``values``, keeping the rollups exact."""
    row = session.get(Conversion, conversion_id, with_for_update=True, populate_existing=True)
    if row.trust == "verified":  # a verified one came first, meanwhile
        return ConversionResult(row, True)
    changes = {name: values[name] for name in _UPGRADED}
    if values["click_pk"] is not None:
        changes.update({name: values[name] for name in _CLICK_COLUMNS})
    campaigns = lock_campaigns(session, [row.campaign_id, changes.get("campaign_id")])
    shift_conversion(session, row.id, -1)
    session.execute(update(Conversion).where(Conversion.id == row.id).values(**changes))
    shift_conversion(session, row.id, 1)
    drop_empty(session, campaigns)
    session.refresh(row)
    return ConversionResult(row, False, upgraded=True)


def _find_order(session: Session, owner_id: str, event: str, order_id: str) -> Conversion | None:
    return session.execute(
        select(Conversion).where(
            Conversion.owner_id == owner_id, Conversion.event == event, Conversion.order_id == order_id
        )
    ).scalar_one_or_none()


def _find_purged_order(session: Session, owner_id: str, event: str, order_id: str) -> Conversion | None:
    """What a purge kept of the conversion with this order id, as an
    unsaved :class:`Conversion`: a replay of it is a duplicate (and a
    verified one no longer upgrades it: its counts are in the rollups)."""
    kept = session.execute(
        select(PurgedConversion).where(
            PurgedConversion.owner_id == owner_id, PurgedConversion.event == event, PurgedConversion.order_id == order_id
        )
    ).scalar_one_or_none()
    if kept is None:
        return None
    return Conversion(
        id=kept.id, created_at=kept.created_at, owner_id=kept.owner_id, campaign_id=kept.campaign_id,
        event=kept.event, revenue=kept.revenue, currency=kept.currency, order_id=kept.order_id,
        source=kept.source, trust=kept.trust, refunded=kept.refunded,
    )
