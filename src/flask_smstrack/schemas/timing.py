"""The query of the best-time report (``GET /reports/best-time``)."""
from __future__ import annotations

from marshmallow import fields, validate

from . import StrictSchema

#: Largest thresholds a request may ask for.
MAX_MIN_CAMPAIGNS = 10_000
MAX_MIN_MESSAGES = 1_000_000_000


class BestTimeQuerySchema(StrictSchema):
    """``?format=json|csv``; ``min_campaigns`` and ``min_messages`` replace
    ``SMSTRACK_BEST_TIME_MIN_CAMPAIGNS`` and ``SMSTRACK_BEST_TIME_MIN_MESSAGES``
    for one request."""

    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv"), error="Must be json or csv."))
    min_campaigns = fields.Integer(
        load_default=None, strict=False, validate=validate.Range(min=1, max=MAX_MIN_CAMPAIGNS)
    )
    min_messages = fields.Integer(
        load_default=None, strict=False, validate=validate.Range(min=1, max=MAX_MIN_MESSAGES)
    )
