"""The best-time report on the API blueprint (see api.py): the local hour
of sending the caller's past campaigns clicked best at, with its evidence."""
from __future__ import annotations

from flask import g, jsonify, request
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from ..errors import InvalidInput
from ..reports.export import csv_download, table_csv
from ..reports.timing import best_time
from ..schemas.timing import BestTimeQuerySchema
from .api import bp


@bp.get("/reports/best-time")
def best_time_report() -> Response:
    """The best local hour to send and the CTR of every local hour of
    sending (``?format=csv``: the per-hour table)."""
    try:
        query = BestTimeQuerySchema().load(request.args.to_dict())
    except ValidationError as err:
        raise InvalidInput(err.messages) from None
    found = best_time(
        g.smstrack_principal.owner_id, min_campaigns=query["min_campaigns"], min_messages=query["min_messages"]
    )
    if query["format"] == "csv":
        return csv_download(table_csv(found.table()), "best-time")
    return jsonify(found.as_dict())
