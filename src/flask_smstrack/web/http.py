"""What the blueprints that read requests share: the body read up to a
limit, and the checks every request's URL and fields pass first."""
from __future__ import annotations

from functools import lru_cache

from flask import current_app, request
from werkzeug.exceptions import HTTPException

from ..config import Keys
from ..errors import InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType
from ..schemas import MAX_BIG_ID, MAX_ID, text_problem

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
#: The methods the catch-all views of unknown paths answer.
CATCH_ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def read_limited_body(limit: int | None = None, *, message: str | None = None) -> bytes:
    """The request body, read up to ``limit`` bytes (default
    ``SMSTRACK_MAX_PAYLOAD_BYTES``); :class:`.PayloadTooLarge` when it is
    longer, with ``message`` (``{limit}`` is filled in) or a plain one."""
    if limit is None:
        limit = current_app.config[Keys.MAX_PAYLOAD_BYTES]
    if request.content_length is None or request.content_length <= limit:
        raw = request.stream.read(limit + 1)
        if len(raw) <= limit:
            return raw
    raise PayloadTooLarge({"_body": [(message or "Body is larger than {limit} bytes.").format(limit=limit)]})


def csv_upload() -> tuple[str, str | None]:
    """The text of a CSV file posted as the body (``text/csv``, at most
    ``SMSTRACK_MAX_IMPORT_BYTES``, UTF-8), and the ``?region=`` of its
    numbers without a country code (two letters, or ``None``)."""
    if request.mimetype not in ("text/csv", "text/plain"):
        raise UnsupportedMediaType({"Content-Type": ["Send the file as text/csv."]})
    region = request.args.get("region")
    if region is not None:
        if not (len(region) == 2 and region.isascii() and region.isalpha()):
            raise InvalidInput({"region": ["Must be a two-letter region code, e.g. US."]})
        region = region.upper()
    raw = read_limited_body(current_app.config[Keys.MAX_IMPORT_BYTES],
                            message="The file is larger than {limit} bytes; split it.")
    try:
        return raw.decode("utf-8-sig"), region
    except UnicodeDecodeError:
        raise InvalidInput({"_body": ["The file is not UTF-8 text."]}) from None


@lru_cache(maxsize=1)
def _big_ids() -> frozenset[str]:
    """The URL arguments naming a row of a table with a 64-bit id
    (``conversion_id`` for ``smstrack_conversions``...); the others are 32-bit."""
    from sqlalchemy import BigInteger

    from ..models import Base

    names = set()
    for table in Base.metadata.tables.values():
        key = list(table.primary_key.columns)
        if len(key) == 1 and isinstance(key[0].type, BigInteger):
            names.add(table.name.removeprefix("smstrack_").removesuffix("s") + "_id")
    return frozenset(names)


def check_request_values() -> None:
    """Refuse, before any query, what no stored row can match: an id in the
    URL beyond what its column holds (404, like any id that names nothing),
    and a query or form value that cannot be stored as text (400 naming it;
    JSON bodies are checked by the schemas). A ``before_request`` hook."""
    for name, value in (request.view_args or {}).items():
        if type(value) is int and value > (MAX_BIG_ID if name in _big_ids() else MAX_ID):
            raise NotFound({name: [f"No {name.removesuffix('_id').replace('_', ' ')} {value}."]})
    sources = [request.args]
    if request.mimetype in _FORM_TYPES:
        sources.append(request.form)
    errors: dict[str, list[str]] = {}
    for values in sources:
        for key, value in values.items(multi=True):
            key, value = key or "", value or ""  # a multipart part may come without a name
            problem = text_problem(key) or text_problem(value)
            if problem:
                errors[key if not text_problem(key) else repr(key)] = [problem]
    if errors:
        raise InvalidInput(errors)


def routed_methods() -> list[str]:
    """The methods for which the app routes this request's path to a view
    other than the catch-all answering it: what a 405 lists as allowed."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in CATCH_ALL_METHODS:
        try:
            endpoint, _ = adapter.match(request.path, method=method)
        except HTTPException:
            continue
        if endpoint != request.endpoint:
            allowed.append(method)
    return allowed
