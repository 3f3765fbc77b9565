"""The JSON API's endpoints for one person's data, admin only (on the API
blueprint, see api.py). Both are POSTs with the number in the body, so a
number never appears in a URL or an access log."""
from __future__ import annotations

from flask import current_app, g, jsonify
from marshmallow import Schema, ValidationError, fields
from werkzeug.wrappers import Response

from ..config import Keys
from ..errors import Forbidden
from ..sms.recipients import normalize_phone
from ..sms.subjects import erase_subject, export_subject
from .api import _load, bp


class PhoneField(fields.String):
    """A phone number, read in E.164 (``SMSTRACK_DEFAULT_REGION`` for one
    without its country code)."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalize_phone(text, current_app.config[Keys.DEFAULT_REGION])
        except ValueError as err:
            raise ValidationError(str(err)[:200]) from None


class SubjectSchema(Schema):
    """The person a request is about: ``{"phone": "+14155550100"}``."""

    phone = PhoneField(required=True, metadata={"example": "+14155550100"})


def _admin_only() -> None:
    if not g.smstrack_principal.is_admin:
        raise Forbidden("Only an admin may export or erase a person's data.")


@bp.post("/subjects/export")
def subjects_export() -> Response:
    """Everything stored about a number, across every owner."""
    _admin_only()
    data = _load(SubjectSchema())
    return jsonify(export_subject(data["phone"]))


@bp.post("/subjects/erase")
def subjects_erase() -> Response:
    """Erase what is stored about a number and suppress it for good."""
    _admin_only()
    data = _load(SubjectSchema())
    return jsonify(phone_tail=data["phone"][-2:], erased=erase_subject(data["phone"]))
