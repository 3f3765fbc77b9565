"""A campaign's channel, as the campaign schemas take it, and the QR code
options of ``GET /api/v1/links/<id>/qr.svg`` and ``.png``."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..models.channels import CHANNELS, SMS_ONLY_FIELDS


def sms_only_errors(data: dict[str, Any], channel: str) -> dict[str, list[str]]:
    """The SMS-only fields ``data`` sets (not ``None``) although ``channel``
    is not ``sms``, each with why."""
    if channel == "sms":
        return {}
    return {
        name: [f"Only SMS campaigns have this; this campaign's channel is {channel}: give a total cost instead."
               if name.startswith("cost_per") else
               f"Only SMS campaigns have this; this campaign's channel is {channel}."]
        for name in SMS_ONLY_FIELDS
        if data.get(name) is not None
    }


class ChannelFields:
    """Mixed into :class:`~flask_smstrack.schemas.CampaignSchema`."""

    channel = fields.String(
        load_default="sms", validate=validate.OneOf(CHANNELS, error="Must be one of: {choices}.")
    )

    @validates_schema
    def _sms_only(self, data, **kwargs):
        # A partial load (an edit) without the channel is checked by the view,
        # which knows the campaign's channel.
        if "channel" in data and (errors := sms_only_errors(data, data["channel"])):
            raise ValidationError(errors)


#: The QR code image's formats.
QR_FORMATS = ("svg", "png")


class QrSchema(Schema):
    """Query of the QR code downloads: ``scale`` is the size of one module
    (square) in pixels, ``border`` the quiet zone in modules."""

    class Meta:
        unknown = "exclude"

    format = fields.String(load_default=None, validate=validate.OneOf(QR_FORMATS))
    scale = fields.Integer(load_default=8, validate=validate.Range(min=1, max=40))
    border = fields.Integer(load_default=4, validate=validate.Range(min=0, max=16))
