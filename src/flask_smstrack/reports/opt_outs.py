"""Opt-outs per campaign and variant: the numbers that replied STOP (or
another opt-out word) to a campaign's message.

An opt-out counts for the campaign and variant of the message it answered
(:attr:`~flask_smstrack.models.OptOutEvent.campaign_id`, ``variant_id``);
opt-outs made another way (the CLI, an import, the API) answer no message
and count for no campaign. Each number counts once per campaign, however many
times it replied. A later opt-in (START) does not take it back: the count
says how the message was received, and stays the same once it happened.
Opt-out events are never purged, so these are read from the events
themselves, one grouped statement each.

opt-out rate = opt-outs / delivered (see DESIGN.md, Metrics).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from sqlalchemy import func, select

from ..models import OptOutEvent
from ..state import get_state

_e = OptOutEvent.__table__.c
#: The action counted.
OPT_OUT = "opt_out"


def opt_outs_query(in_scope: Callable[[Any], Any]):
    """``(campaign_id, opt_outs)`` for each campaign with any whose id
    ``in_scope(column)`` keeps (see :func:`.totals.campaign_scope`)."""
    return (
        select(_e.campaign_id, func.count(func.distinct(_e.phone_hash)).label("opt_outs"))
        .where(_e.action == OPT_OUT, in_scope(_e.campaign_id))
        .group_by(_e.campaign_id)
    )


def opt_out_counts(campaign_ids: Iterable[int]) -> dict[int, int]:
    """Opt-outs per campaign id (those without any are left out)."""
    ids = list(campaign_ids)
    if not ids:
        return {}
    rows = get_state().db.session.execute(opt_outs_query(lambda column: column.in_(ids)))
    return {cid: int(n) for cid, n in rows}


def opt_outs_by_variant(campaign_id: int) -> dict[int | None, int]:
    """Opt-outs per variant id of one campaign (``None``: a campaign's own
    message, without variants)."""
    rows = get_state().db.session.execute(
        select(_e.variant_id, func.count(func.distinct(_e.phone_hash)))
        .where(_e.action == OPT_OUT, _e.campaign_id == campaign_id)
        .group_by(_e.variant_id)
    )
    return {variant_id: int(n) for variant_id, n in rows}
