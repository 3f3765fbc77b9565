"""The JSON API's conversion endpoints: recording, listing, refunds and
conversion tokens (on the API blueprint, see api.py)."""
from __future__ import annotations

import logging

from flask import g, jsonify, request
from sqlalchemy import select
from werkzeug.wrappers import Response

from ..errors import InvalidInput
from ..models import Campaign, Conversion
from ..schemas import ConversionOutSchema, ConversionSchema, ConversionTokenSchema, RefundOutSchema, RefundSchema
from ..state import get_state
from ..tracking.conversions import record_conversion
from ..tracking.refunds import refund_conversion
from ..tracking.spool import DATABASE_DOWN, spool_conversion
from ..tracking.tokens import make_token
from .api import _campaign_or_404, _load, bp

logger = logging.getLogger("flask_smstrack")


def _conversion_out(conversion, **extra) -> dict:
    return dict(ConversionOutSchema().dump(conversion), attributed=conversion.click_pk is not None, **extra)


@bp.post("/conversions")
def conversions_create() -> tuple[Response, int]:
    """A verified conversion. An order id the caller's owner already has
    for the event is a replay (200, ``duplicate``), unless a browser
    reported it unverified: this one then replaces it (200, ``upgraded``).
    While the database is down it is queued in the spool (202, ``queued``)
    and stored, deduplicated the same way, when it is back."""
    data = _load(ConversionSchema())
    fields = dict(source="server", trust="verified", scope=g.smstrack_principal)
    try:
        result = record_conversion(data, **fields)
    except DATABASE_DOWN:
        logger.exception("Could not record a conversion (order %s); spooled for replay", data.get("order_id"))
        if spool_conversion(data, **fields) == "lost":
            return jsonify(status="unavailable", message="The database and the spool are unavailable:"
                           " send it again later."), 503
        return jsonify(status="queued", queued=True, order_id=data.get("order_id"),
                       message="The database is unavailable: the conversion was queued and will be stored"
                       " when it is back (order ids are still deduplicated)."), 202
    body = dict(
        ConversionOutSchema().dump(result.conversion), attributed=result.attributed,
        duplicate=result.duplicate, upgraded=result.upgraded,
    )
    if result.purged:
        body["purged"] = True
    return jsonify(body), 200 if result.duplicate or result.upgraded else 201


@bp.get("/conversions")
def conversions_list() -> Response:
    """Recent conversions; ``?attributed=false`` lists the unattributed ones
    (the caller's own; an admin sees every one)."""
    p = g.smstrack_principal
    query = select(Conversion).order_by(Conversion.id.desc())
    attributed = request.args.get("attributed")
    if attributed not in (None, "true", "false"):
        raise InvalidInput({"attributed": ["Must be true or false."]})
    if attributed == "false":
        query = query.where(Conversion.click_pk.is_(None))
        if not p.is_admin:
            query = query.where(Conversion.owner_id == p.owner_id)
    else:
        visible = select(Campaign.id)
        if not p.is_admin:
            visible = visible.where(Campaign.owner_id == p.owner_id)
        query = query.where(Conversion.campaign_id.in_(visible))
    campaign_id = request.args.get("campaign_id", type=int)
    if campaign_id is not None:
        _campaign_or_404(campaign_id)
        query = query.where(Conversion.campaign_id == campaign_id)
    limit = min(max(request.args.get("limit", 100, type=int), 1), 1000)
    rows = get_state().db.session.execute(query.limit(limit)).scalars()
    return jsonify(conversions=[_conversion_out(c) for c in rows])


@bp.post("/conversions/<int:conversion_id>/refund")
def conversions_refund(conversion_id: int) -> tuple[Response, int]:
    """Refund a verified conversion: ``amount`` (default: all that is left),
    ``reason`` and ``external_id`` (a replay with the same one changes
    nothing)."""
    data = _load(RefundSchema())
    result = refund_conversion(conversion_id, g.smstrack_principal, **data)
    body = dict(RefundOutSchema().dump(result.refund), duplicate=result.duplicate)
    body["conversion"] = _conversion_out(result.conversion)
    return jsonify(body), 200 if result.duplicate else 201


@bp.post("/conversion-tokens")
def conversion_tokens_create() -> Response:
    """A conversion token for a thank-you page: the page posts it with the
    same event, order id, revenue and currency, and the collector stores
    the conversion verified, for the caller's campaigns."""
    data = _load(ConversionTokenSchema())
    token = make_token(data, g.smstrack_principal)
    return jsonify(token=token.token, expires_at=token.expires_at.isoformat())
