"""The opt-out API's input and output (see :mod:`.api_optouts`)."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from ..schemas import StrictSchema

#: Numbers one request may add or remove; larger lists go through the CSV import.
MAX_PHONES = 1000
#: Entries per page of ``GET /opt-outs``.
PER_PAGE = 100
MAX_PER_PAGE = 1000


class _Phones(fields.List):
    """A list of numbers as text; an item's error names its position, so
    every field's errors stay a list of messages."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return super()._deserialize(value, attr, data, **kwargs)
        except ValidationError as err:
            if not isinstance(err.messages, dict):
                raise
            raise ValidationError(
                [f"Item {i}: {' '.join(m)}" for i, m in sorted(err.messages.items())]
            ) from None


class PhonesSchema(StrictSchema):
    """``{"phones": ["+14155550100", "(415) 555-0101", ...]}``: numbers in
    E.164, or national ones in ``region`` (default ``SMSTRACK_DEFAULT_REGION``)."""

    phones = _Phones(
        fields.String(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(min=1, max=MAX_PHONES, error=f"Give from 1 to {MAX_PHONES} numbers."),
    )
    region = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^[A-Z]{2}$", error="Must be a two-letter region code in capitals, e.g. US."),
    )


class OptOutPageSchema(StrictSchema):
    """Query of ``GET /opt-outs``."""

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=PER_PAGE, validate=validate.Range(min=1, max=MAX_PER_PAGE))


class OptOutSchema(Schema):
    """One entry of the list: the number is kept only as a hash and its last
    two digits."""

    id = fields.Integer()
    phone_tail = fields.String(allow_none=True)
    source = fields.String()
    keyword = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    #: Whether it holds for every owner's campaigns (a STOP from a number
    #: no campaign texted), not only the caller's.
    every_owner = fields.Boolean()
