"""Validation of everything that comes in from outside: collector beacons,
server-side conversions and the JSON API. Views call ``schema.load()`` and
hand ``ValidationError.messages`` back to the client.

Money is ``Decimal`` end to end: bodies are parsed with ``parse_float=Decimal``
and :class:`Money` refuses floats, booleans, NaN and infinities.
"""
from __future__ import annotations

import json
import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import pycountry
from marshmallow import (EXCLUDE, Schema, ValidationError, fields, post_load, pre_load, validate, validates,
                         validates_schema)

from ..config import SMS_PROVIDERS, Keys
from .channels import ChannelFields
from .destinations import destinations_field

#: Click ids and codes: URL-safe base64 alphabet.
CLICK_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CODE_RE = re.compile(r"^[A-Za-z0-9_-]{3,64}$")
#: Codes that would shadow other routes or read as words, kept free.
RESERVED_CODES = frozenset({"api", "admin", "login", "logout", "static", "smstrack"})
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MONEY_PLACES = 4
#: The largest id of a campaign, link, variant or user (a 32-bit column);
#: larger ones name nothing and are never looked up.
MAX_ID = 2**31 - 1
#: The largest id of the tables that grow with traffic (64-bit columns).
MAX_BIG_ID = 2**63 - 1
#: The furthest a page of a list may start.
MAX_OFFSET = 1_000_000_000
#: JSON bodies nested deeper than this are refused before they are parsed.
MAX_JSON_DEPTH = 32

_SURROGATE = re.compile(r"[\ud800-\udfff]")
_BRACKETS = re.compile(rb'[\[\]{}]|"(?:[^"\\]|\\.)*"?')


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or ``None``: NUL characters
    (PostgreSQL refuses them) and lone surrogates (not Unicode text, which
    no database encodes) are refused wherever text comes in."""
    if "\x00" in value:
        return "Must not contain NUL (\\u0000) characters."
    if _SURROGATE.search(value):
        return "Must be Unicode text: a lone surrogate (\\ud800-\\udfff) is not a character."
    return None


def json_too_deep(raw: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``raw`` nests arrays and objects more than
    ``limit`` deep (brackets inside strings do not count). Cheap for the
    usual body, which has fewer brackets than the limit."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depth = 0
    for match in _BRACKETS.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def parse_body(raw: bytes) -> dict[str, Any]:
    """Parse a JSON object, keeping every number exact.

    Raises :class:`ValidationError` keyed ``_body`` when the body is not a
    JSON object.
    """
    if json_too_deep(raw):
        raise ValidationError({"_body": [f"Nested deeper than {MAX_JSON_DEPTH} levels."]})
    try:
        data = json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ValidationError({"_body": ["Body must be a JSON object."]}) from None
    if not isinstance(data, dict):
        raise ValidationError({"_body": ["Body must be a JSON object."]})
    return data


def is_timezone(name: str) -> bool:
    """True for an IANA timezone name such as ``Europe/Paris``."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not name or len(name) > 64:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def is_currency(code: str) -> bool:
    """True for an ISO 4217 currency code such as ``USD``."""
    return len(code) == 3 and pycountry.currencies.get(alpha_3=code) is not None


class Money(fields.Field):
    """An exact amount of money, given as a JSON number or a string.

    ``maximum`` is a callable so the limit can come from the app config.
    """

    default_error_messages = {
        "invalid": "Not a valid amount: give a number or a decimal string such as \"49.90\".",
        "negative": "Must be 0 or more.",
        "too_large": "Must be at most {maximum}.",
        "places": "At most {places} digits after the decimal point.",
    }

    def __init__(self, *, maximum=None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.maximum = maximum

    def _deserialize(self, value, attr, data, **kwargs) -> Decimal:
        if isinstance(value, bool) or isinstance(value, float):
            raise self.make_error("invalid")
        if isinstance(value, (int, Decimal)):
            amount = Decimal(value)
        elif isinstance(value, str) and 0 < len(value.strip()) <= 40:
            try:
                amount = Decimal(value.strip())
            except InvalidOperation:
                raise self.make_error("invalid") from None
        else:
            raise self.make_error("invalid")
        if not amount.is_finite():
            raise self.make_error("invalid")
        if amount < 0:
            raise self.make_error("negative")
        maximum = Decimal(self.maximum() if callable(self.maximum) else self.maximum or "1e12")
        if amount > maximum:
            raise self.make_error("too_large", maximum=f"{maximum:f}")
        exponent = amount.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -MONEY_PLACES:
            normalized = amount.normalize()
            if normalized.as_tuple().exponent < -MONEY_PLACES:
                raise self.make_error("places", places=MONEY_PLACES)
            amount = normalized
        return amount

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format_money(value)


def format_money(value: Decimal) -> str:
    """A decimal string with at least two places: ``49.9`` -> ``"49.90"``."""
    value = Decimal(value)
    if value == value.to_integral_value():
        return f"{value.quantize(Decimal('0.01')):f}"
    normalized = value.normalize()
    if normalized.as_tuple().exponent > -2:
        normalized = normalized.quantize(Decimal("0.01"))
    return f"{normalized:f}"


_RATE_Q = Decimal("0.000001")


def api_value(value: Any, kind: str) -> Any:
    """A number as the API and CSV write it: money (``kind="money"``) as a
    decimal string, rates (``"rate"``) as fractions and other fractional
    numbers (``"number"``, such as p-values) to six places."""
    if value is None:
        return None
    if kind == "money":
        return format_money(value)
    if kind == "rate":
        return float(Decimal(value).quantize(_RATE_Q, rounding=ROUND_HALF_EVEN))
    if kind == "number":
        return round(float(value), 6)
    return value


class Currency(fields.String):
    default_error_messages = {"currency": "Not an ISO 4217 currency code (for example USD, EUR, GBP)."}

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        code = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if not is_currency(code):
            raise self.make_error("currency")
        return code


def _max_revenue() -> str:
    from flask import current_app

    return current_app.config[Keys.MAX_REVENUE]


ClickId = lambda **kw: fields.String(  # noqa: E731
    validate=validate.Regexp(CLICK_ID_RE, error="Must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -."),
    **kw,
)


def _text_errors(value: Any) -> list[str] | None:
    """The message of :func:`text_problem` for a value or anything it holds
    (keys and items of objects and arrays, at any depth), as one list: the
    field is named, whatever inside it is wrong."""
    if isinstance(value, str):
        problem = text_problem(value)
        return [problem] if problem else None
    if isinstance(value, dict):
        items = [part for pair in value.items() for part in pair]
    elif isinstance(value, list):
        items = value
    else:
        return None
    for item in items:
        if errors := _text_errors(item):
            return errors
    return None


class StrictSchema(Schema):
    """Every input schema: unknown fields are left out, and no field takes
    text that cannot be stored (see :func:`text_problem`)."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _storable_text(self, data, **kwargs):
        if not isinstance(data, dict):
            return data
        errors = {}
        for name, field in self.load_fields.items():
            key = field.data_key or name
            if key in data and (found := _text_errors(data[key])):
                errors[key] = found
        if errors:
            raise ValidationError(errors)
        return data


class LandingSchema(StrictSchema):
    """``{"type": "landing", "click_id": ...}``: the landing page loaded."""

    type = fields.String(required=True, validate=validate.Equal("landing"))
    click_id = ClickId(required=True)


class ConversionSchema(StrictSchema):
    """A conversion, from the snippet, the API or host code."""

    type = fields.String(load_default="conversion", validate=validate.Equal("conversion"))
    click_id = ClickId(load_default=None, allow_none=True)
    event = fields.String(
        load_default="conversion",
        validate=[
            validate.Length(min=1, max=64),
            validate.Regexp(r"^[\w.:-]+$", error="Use letters, digits, _ . : and - only."),
        ],
    )
    revenue = Money(load_default=None, allow_none=True, maximum=_max_revenue)
    currency = Currency(load_default=None, allow_none=True)
    order_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=128))

    @pre_load
    def _numbers_as_strings(self, data, **kwargs):
        # Order ids are often numeric in shops' own code.
        if isinstance(data, dict) and isinstance(data.get("order_id"), int) and not isinstance(
            data.get("order_id"), bool
        ):
            data = dict(data, order_id=str(data["order_id"]))
        return data

    @validates_schema
    def _currency_with_revenue(self, data, **kwargs):
        if data.get("revenue") is not None and not data.get("currency"):
            raise ValidationError("Required when revenue is given.", "currency")


class BeaconConversionSchema(ConversionSchema):
    """A conversion from the snippet, with the conversion token the shop's
    server made for it, if any."""

    token = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=400))


class ConversionTokenSchema(ConversionSchema):
    """``POST /api/v1/conversion-tokens``: the conversion a token is for."""

    class Meta:
        unknown = EXCLUDE
        exclude = ("type", "click_id")

    event = fields.String(load_default="purchase", validate=ConversionSchema._declared_fields["event"].validators)
    order_id = fields.String(required=True, validate=validate.Length(min=1, max=128))


class RefundSchema(StrictSchema):
    """``POST /api/v1/conversions/<id>/refund``; without an amount, all
    that is left is refunded."""

    amount = Money(load_default=None, allow_none=True, maximum=_max_revenue)
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=200))
    external_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=128))


COLLECT_SCHEMAS: dict[str, type[Schema]] = {"landing": LandingSchema, "conversion": BeaconConversionSchema}


def load_beacon(data: dict[str, Any]) -> dict[str, Any]:
    """Validate a collector body, dispatching on its ``type``."""
    kind = data.get("type")
    schema = COLLECT_SCHEMAS.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise ValidationError({"type": [f"Must be one of: {', '.join(COLLECT_SCHEMAS)}."]})
    return schema().load(data)


def web_url(value: str) -> None:
    """Raise :class:`ValidationError` unless ``value`` is an absolute web URL."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Must be an absolute http:// or https:// URL.")
    if any(c.isspace() for c in value.strip()):
        raise ValidationError("Must not contain spaces.")


#: The ways a campaign's cost is given; at most one per campaign.
COST_FIELDS = ("cost", "cost_per_message", "cost_per_segment")
#: The longest message template: ten segments of GSM-7.
MAX_MESSAGE = 1600


class CampaignSchema(ChannelFields, StrictSchema):
    """Input and output of ``/api/v1/campaigns``."""

    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    currency = Currency(required=True)
    cost = Money(load_default=None, allow_none=True)
    cost_per_message = Money(load_default=None, allow_none=True)
    cost_per_segment = Money(load_default=None, allow_none=True)
    message_template = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=MAX_MESSAGE))
    sent = fields.Integer(load_default=None, allow_none=True, strict=True, validate=validate.Range(min=0, max=100_000_000))
    sent_at = fields.AwareDateTime(load_default=None, allow_none=True, default_timezone=None)
    #: Profit, ROI, ROAS, EPC and AOV count verified revenue only.
    verified_revenue_only = fields.Boolean(load_default=False)
    #: Where its disabled or expired links send visitors.
    fallback_url = fields.String(load_default=None, allow_none=True, validate=[validate.Length(max=2048), lambda v: web_url(v)])
    #: Who sends its messages; ``None``: ``SMSTRACK_SMS_PROVIDER``.
    provider = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(SMS_PROVIDERS))
    status = fields.String(dump_only=True)
    owner_id = fields.String(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)
    total_cost = Money(dump_only=True, data_key="total_cost")

    @validates_schema
    def _one_cost(self, data, **kwargs):
        given = [name for name in COST_FIELDS if data.get(name) is not None]
        if len(given) > 1:
            raise ValidationError(f"Give one of {', '.join(COST_FIELDS)}, not {' and '.join(given)}.", given[0])


class VariantSchema(StrictSchema):
    """Input and output of ``/api/v1/campaigns/<id>/variants``."""

    id = fields.Integer(dump_only=True)
    name = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=40),
            validate.Regexp(r"^[\w .-]+$", error="Use letters, digits, spaces, _ . and - only."),
        ],
    )
    message_template = fields.String(required=True, validate=validate.Length(min=1, max=MAX_MESSAGE))
    weight = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=1000))

    @post_load
    def _strip(self, data, **kwargs):
        data["name"] = data["name"].strip()
        return data


class LinkSchema(StrictSchema):
    """Input and output of ``/api/v1/campaigns/<id>/links``."""

    id = fields.Integer(dump_only=True)
    campaign_id = fields.Integer(dump_only=True)
    code = fields.String(load_default=None, allow_none=True)
    destination_url = fields.String(required=True, validate=validate.Length(max=2048))
    append_click_id = fields.Boolean(load_default=True)
    utm = fields.Dict(keys=fields.String(), values=fields.String(), load_default=None, allow_none=True)
    #: A landing-page test (see :mod:`.destinations`).
    destinations = destinations_field()
    short_url = fields.String(dump_only=True)
    disabled = fields.Boolean(dump_only=True)
    expires_at = fields.AwareDateTime(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)

    @validates("code")
    def _code(self, value, **kwargs):
        if value is None:
            return
        if not CODE_RE.match(value):
            raise ValidationError("Must be 3 to 64 characters of A-Z, a-z, 0-9, _ and -.")
        if value.lower() in RESERVED_CODES:
            raise ValidationError("This code is reserved; choose another.")

    @validates("destination_url")
    def _destination(self, value, **kwargs):
        web_url(value)

    @validates("utm")
    def _utm(self, value, **kwargs):
        if value is None:
            return
        unknown = sorted(set(value) - set(UTM_KEYS))
        if unknown:
            raise ValidationError(f"Unknown key {unknown[0]!r}; allowed: {', '.join(UTM_KEYS)}.")
        if any(len(v) > 200 for v in value.values()):
            raise ValidationError("Values must be at most 200 characters.")

    @post_load
    def _strip(self, data, **kwargs):
        if "destination_url" in data:
            data["destination_url"] = data["destination_url"].strip()
        return data


class MessagePreviewSchema(StrictSchema):
    """``POST /api/v1/messages/preview``: the text of one message."""

    text = fields.String(required=True, validate=validate.Length(min=1, max=MAX_MESSAGE))
    #: Render ``{link}`` and attribute placeholders as this campaign's first
    #: recipient would get them.
    campaign_id = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1, max=MAX_ID)
    )


#: Who to send the next message to (``GET .../recipients?segment=``).
AUDIENCE_SEGMENTS = ("all", "clicked", "clicked_not_converted", "not_clicked", "converted")


class AudienceSchema(StrictSchema):
    """Query of ``GET /api/v1/campaigns/<id>/recipients``."""

    segment = fields.String(load_default="all", validate=validate.OneOf(AUDIENCE_SEGMENTS))
    variant = fields.String(load_default=None, validate=validate.Length(min=1, max=40))
    device = fields.String(load_default=None, validate=validate.Length(min=1, max=16))
    country = fields.String(
        load_default=None, validate=validate.Regexp(r"^[A-Za-z]{2}$", error="Must be a two-letter country code.")
    )
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv")))
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=10_000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_OFFSET))


class ConversionOutSchema(Schema):
    id = fields.Integer()
    created_at = fields.AwareDateTime()
    event = fields.String()
    revenue = Money(allow_none=True)
    currency = fields.String(allow_none=True)
    order_id = fields.String(allow_none=True)
    campaign_id = fields.Integer(allow_none=True)
    attributed = fields.Boolean()
    source = fields.String()
    trust = fields.String()
    refunded = Money()
    duplicate = fields.Boolean()
    upgraded = fields.Boolean()
    #: A duplicate of a conversion deleted by ``flask smstrack purge``: what
    #: was kept of it (order id, amounts, trust).
    purged = fields.Boolean()


class RefundOutSchema(Schema):
    id = fields.Integer()
    conversion_id = fields.Integer()
    amount = Money()
    currency = fields.String()
    reason = fields.String()
    external_id = fields.String()
    created_at = fields.AwareDateTime()
