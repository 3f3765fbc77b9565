"""What the blueprints that read request bodies share."""
from __future__ import annotations

from flask import current_app, request

from ..config import Keys
from ..errors import PayloadTooLarge


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
