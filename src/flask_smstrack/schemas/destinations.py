"""The destinations of a landing-page test, as links take them:
``destinations: [{"label", "url", "weight"}, ...]``."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates, validates_schema

from ..models.destinations import MAX_DESTINATIONS, MAX_WEIGHT, MIN_DESTINATIONS, MIN_WEIGHT


class DestinationSchema(Schema):
    """One destination. Its text is checked by the link's schema, which
    holds it (``StrictSchema`` looks inside lists)."""

    class Meta:
        ordered = True

    number = fields.Integer(dump_only=True)
    label = fields.String(required=True, validate=validate.Length(min=1, max=64))
    url = fields.String(required=True, validate=validate.Length(max=2048))
    weight = fields.Integer(required=True, strict=True, validate=validate.Range(min=MIN_WEIGHT, max=MAX_WEIGHT))

    @validates("label")
    def _label(self, value: str, **kwargs: Any) -> None:
        if not value.strip():
            raise ValidationError("Must not be blank.")

    @validates("url")
    def _url(self, value: str, **kwargs: Any) -> None:
        from . import web_url

        web_url(value)

    @validates_schema(skip_on_field_errors=False)
    def _complete(self, data: dict, **kwargs: Any) -> None:
        # Also inside a partial link edit: a destination is given whole.
        missing = [name for name in ("label", "url", "weight") if name not in data]
        if missing:
            raise ValidationError({name: ["Missing data for required field."] for name in missing})

    @post_load
    def _strip(self, data: dict, **kwargs: Any) -> dict:
        return dict(data, label=data["label"].strip(), url=data["url"].strip())


def _check(items: list[dict]) -> None:
    if items and not MIN_DESTINATIONS <= len(items) <= MAX_DESTINATIONS:
        raise ValidationError(
            f"Give {MIN_DESTINATIONS} to {MAX_DESTINATIONS} destinations (got {len(items)}), or [] for none."
        )
    labels = [item["label"].casefold() for item in items]
    if len(set(labels)) != len(labels):
        raise ValidationError("Labels must be unique.")


def destinations_field() -> fields.List:
    """The ``destinations`` field of a link: 2 to 10 destinations with unique
    labels, or ``[]`` for none (the link's ``destination_url`` alone)."""
    return fields.List(fields.Nested(DestinationSchema), validate=_check)
