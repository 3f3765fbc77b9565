"""The input of a link edit (``PATCH /api/v1/links/<id>``, the dashboard's
edit form and ``flask smstrack update-link``)."""
from __future__ import annotations

import datetime as dt

from marshmallow import EXCLUDE, ValidationError, fields, validate

from ..schemas import LinkSchema


def _in_range(value: dt.datetime) -> None:
    # Far years overflow when moved to UTC, and mean nothing for an offer.
    if not 1970 <= value.year <= 9998:
        raise ValidationError("Must be between the years 1970 and 9998.")


class LinkUpdateSchema(LinkSchema):
    """Load with ``partial=True``: the fields given change, the others stay.
    ``expires_at`` is ISO 8601 with its UTC offset; ``null`` clears it."""

    class Meta:
        unknown = EXCLUDE
        exclude = ("code",)

    # As in LinkSchema (its checks apply), without the defaults of a new link.
    destination_url = fields.String(validate=validate.Length(max=2048))
    append_click_id = fields.Boolean()
    utm = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True)
    disabled = fields.Boolean()
    expires_at = fields.AwareDateTime(allow_none=True, default_timezone=None, validate=_in_range)


def load_link_update(data: dict) -> dict:
    """``data`` validated as a partial link edit (raises ``ValidationError``);
    an empty edit is refused, naming the fields one may give."""
    result = LinkUpdateSchema(partial=True).load(data)
    if not result:
        names = ", ".join(sorted(LinkUpdateSchema().load_fields))
        raise ValidationError({"_schema": [f"Give at least one of: {names}."]})
    return result
