"""The JSON API's opt-out endpoints: the caller's suppression list, adding
and removing numbers, and a CSV import (on the API blueprint, see api.py)."""
from __future__ import annotations

from flask import g, jsonify, request
from marshmallow import ValidationError
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from ..errors import InvalidInput
from ..models import EVERY_OWNER, Suppression
from ..sms.optouts import Change, import_opt_outs, normalize_all, opt_in, opt_out
from ..sms.recipients import ImportError_, read_csv
from ..sms.suppression import owners_of
from ..state import get_state
from .api import _load, bp
from .http import csv_upload
from .optout_schemas import OptOutPageSchema, OptOutSchema, PhonesSchema


def _change_out(change: Change, invalid: list[tuple[str, str]], done: str, kept: str) -> dict:
    return {
        done: change.changed,
        kept: change.unchanged,
        "invalid": [{"phone": text, "message": why} for text, why in invalid],
    }


@bp.get("/opt-outs")
def opt_outs_list() -> Response:
    """The numbers your campaigns never text, newest first, paged
    (``?page=``, ``?per_page=``): yours, and those that hold for every owner."""
    try:
        query = OptOutPageSchema().load(request.args.to_dict())
    except ValidationError as err:
        raise InvalidInput(err.messages) from None
    page, per_page = query["page"], query["per_page"]
    where = Suppression.owner_id.in_(owners_of(g.smstrack_principal.owner_id))
    session = get_state().db.session
    total = session.execute(select(func.count()).select_from(Suppression).where(where)).scalar_one()
    rows = session.execute(
        select(Suppression).where(where).order_by(Suppression.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).scalars()
    entries = [dict(OptOutSchema().dump(s), every_owner=s.owner_id == EVERY_OWNER) for s in rows]
    return jsonify(opt_outs=entries, total=total, page=page, per_page=per_page, pages=-(-total // per_page))


@bp.post("/opt-outs")
def opt_outs_add() -> Response:
    """Never text these numbers from your campaigns again."""
    data = _load(PhonesSchema())
    phones, invalid = normalize_all(data["phones"], data["region"])
    change = opt_out(phones, g.smstrack_principal.owner_id, source="api")
    return jsonify(_change_out(change, invalid, "added", "already"))


@bp.post("/opt-outs/remove")
def opt_outs_remove() -> Response:
    """Take numbers off your list (they opted back in)."""
    data = _load(PhonesSchema())
    phones, invalid = normalize_all(data["phones"], data["region"])
    change = opt_in(phones, g.smstrack_principal.owner_id, source="api")
    return jsonify(_change_out(change, invalid, "removed", "absent"))


@bp.post("/opt-outs/import")
def opt_outs_import() -> Response:
    """Add the numbers of a CSV body (``text/csv``, a phone column) to your list."""
    text, region = csv_upload()
    if "\x00" in text:
        raise InvalidInput({"_body": ["The file contains a NUL character."]})
    try:
        change = import_opt_outs(read_csv(text), g.smstrack_principal.owner_id, region=region)
    except ImportError_ as err:
        raise InvalidInput({"_body": [str(err)]}) from None
    body = _change_out(change, [], "added", "already")
    body["invalid"] = [{"line": line, "message": why} for line, why in change.invalid]
    return jsonify(body)
