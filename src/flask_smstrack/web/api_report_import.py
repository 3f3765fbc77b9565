"""The JSON API's import of another platform's delivery report (on the API
blueprint, see api.py): ``POST /campaigns/<id>/delivery-report``, a
multipart form with the CSV ``file``, its ``platform`` and ``map`` fields."""
from __future__ import annotations

from flask import current_app, jsonify, request
from werkzeug.wrappers import Response

from ..config import Keys
from ..errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from ..reports.rollups import start_catch_up
from ..schemas import format_money
from ..sms.recipients import ImportError_, read_csv
from ..sms.report_import import PLATFORMS, import_report, parse_overrides
from .api import _campaign_or_404, bp


@bp.post("/campaigns/<int:campaign_id>/delivery-report")
def delivery_report_import(campaign_id: int) -> tuple[Response, int]:
    campaign = _campaign_or_404(campaign_id)
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType({"Content-Type": ["Send a multipart/form-data form with the CSV as 'file'."]})
    limit = current_app.config[Keys.MAX_IMPORT_BYTES]
    if request.content_length is None or request.content_length > limit:
        raise PayloadTooLarge({"file": [f"Larger than {limit} bytes (or no Content-Length); split it."]})
    platform = request.form.get("platform", "generic")
    if platform not in PLATFORMS:
        raise InvalidInput({"platform": [f"Must be one of {', '.join(sorted(PLATFORMS))}."]})
    upload = request.files.get("file")
    if upload is None:
        raise InvalidInput({"file": ["Missing: the report as a CSV file."]})
    try:
        text = upload.read(limit + 1).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput({"file": ["Not UTF-8 text."]}) from None
    try:
        overrides = parse_overrides(request.form.getlist("map"))
    except ImportError_ as err:
        raise InvalidInput({"map": [str(err).removeprefix("--map ")]}) from None
    try:
        result = import_report(campaign.id, read_csv(text), platform, overrides=overrides)
    except ImportError_ as err:
        raise InvalidInput({"file": [f"{str(err)[0].upper()}{str(err)[1:]}."]}) from None
    start_catch_up([campaign.id])
    return jsonify(
        matched=result.matched, updated=result.updated, clicked=result.clicked,
        cost=format_money(result.cost) if result.cost is not None else None,
        errors=[{"line": line, "message": message} for line, message in result.errors],
    ), 200
