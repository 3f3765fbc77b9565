"""Reading providers' JSON payloads: the body parsed with its depth
limited, and fields checked for their type, with errors that name them."""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from ..errors import InvalidInput
from ..schemas import MAX_JSON_DEPTH, json_too_deep, text_problem


def parse_json(raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw``; numbers with a fraction are ``Decimal``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput({"_body": ["Not UTF-8 text."]}) from None
    if json_too_deep(text):
        raise InvalidInput({"_body": [f"Nested deeper than {MAX_JSON_DEPTH} levels."]})
    try:
        body = json.loads(text, parse_float=Decimal)
    except ValueError as err:
        raise InvalidInput({"_body": [f"Not valid JSON: {err}."]}) from None
    if not isinstance(body, dict):
        raise InvalidInput({"_body": ["Must be a JSON object."]})
    return body


def obj(data: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    """The object ``data[name]`` (``{}`` when missing or null)."""
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput({f"{where}{name}": ["Must be an object."]})
    return value


def items(data: dict[str, Any], name: str, where: str) -> list[dict[str, Any]]:
    """The list of objects ``data[name]`` (``[]`` when missing or null)."""
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidInput({f"{where}{name}": ["Must be a list of objects."]})
    return value


def text(data: dict[str, Any], name: str, where: str, *, required: bool = False) -> str | None:
    """The string ``data[name]``; a number (Shopify's ids) becomes text."""
    value = data.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None or value == "":
        if required:
            raise InvalidInput({f"{where}{name}": ["Missing."]})
        return None
    if not isinstance(value, str) or len(value) > 2048:
        raise InvalidInput({f"{where}{name}": ["Must be a string of at most 2048 characters."]})
    if problem := text_problem(value):
        raise InvalidInput({f"{where}{name}": [problem]})
    return value


def integer(data: dict[str, Any], name: str, where: str) -> int | None:
    """The whole number ``data[name]``, 0 or more."""
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput({f"{where}{name}": ["Must be a whole number, 0 or more."]})
    return value


def money(data: dict[str, Any], name: str, where: str) -> Decimal | None:
    """The amount ``data[name]``: a decimal string (``"19.99"``) or number."""
    value = data.get(name)
    if value is None or value == "":
        return None
    problem = {f"{where}{name}": ["Must be an amount of 0 or more, such as \"19.99\"."]}
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)) or len(str(value)) > 40:
        raise InvalidInput(problem)
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except ArithmeticError:
        raise InvalidInput(problem) from None
    if not amount.is_finite() or amount < 0:
        raise InvalidInput(problem)
    return amount
