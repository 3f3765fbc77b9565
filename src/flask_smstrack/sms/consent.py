"""Recipients' consent records and time zones, from the import's columns.

An import's ``timezone``, ``consent_source`` and ``consent_at`` columns go to
the recipient's own fields, not to its attributes:

- ``timezone``: an IANA name (``America/New_York``, any case); it wins over
  the zones of the number for quiet hours and ``send --at``;
- ``consent_source``: where the recipient agreed (``checkout form``,
  ``paper form at the Main St. shop``...), up to 200 characters;
- ``consent_at``: when, as an ISO 8601 date or date-time (``2026-03-01``,
  ``2026-03-01T14:05:00``, ``2026-03-01T14:05:00+01:00``, ``...Z``); a time
  without an offset, or a date alone (its midnight), is read in
  ``SMSTRACK_TIMEZONE``.

A recipient has a consent record when it has both a source and a time. With
``SMSTRACK_REQUIRE_CONSENT``, recipients without one are left out of prepare
and send: they stay ``pending`` (never rendered, exported or sent) until an
import gives them a record.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app
from sqlalchemy import and_, func, not_, select, update

from ..config import Keys
from ..models import Recipient
from ..state import get_state
from .quiet import timezone_name, zone

#: Import columns read into the recipient's own fields.
RECORD_COLUMNS = ("timezone", "consent_source", "consent_at")
#: The longest consent source kept.
SOURCE_LENGTH = 200

_r = Recipient.__table__.c

#: SQL: the recipient has a consent record.
HAS_CONSENT = and_(_r.consent_source.is_not(None), _r.consent_source != "", _r.consent_at.is_not(None))


def consent_required() -> bool:
    """Whether ``SMSTRACK_REQUIRE_CONSENT`` is on."""
    value = current_app.config[Keys.REQUIRE_CONSENT]
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def consent_conditions() -> tuple:
    """Extra ``WHERE`` conditions on recipients to prepare or send: a
    consent record when one is required, else nothing."""
    return (HAS_CONSENT,) if consent_required() else ()


def without_consent(campaign_id: int) -> int:
    """Unsent recipients of the campaign left out for want of a consent
    record (0 when none is required)."""
    if not consent_required():
        return 0
    return get_state().db.session.execute(
        select(func.count()).where(
            _r.campaign_id == campaign_id, _r.status.in_(("pending", "ready")), not_(HAS_CONSENT)
        )
    ).scalar_one()


def leave_out_without_consent(campaign_id: int) -> int:
    """Take back the messages rendered for recipients without a consent
    record (prepared before consent was required), so they are neither
    exported nor sent; returns how many recipients are left out. Not
    committed."""
    if not consent_required():
        return 0
    get_state().db.session.execute(
        update(Recipient.__table__)
        .where(_r.campaign_id == campaign_id, _r.status == "ready", not_(HAS_CONSENT))
        .values(status="pending", message=None, segments=None)
    )
    return without_consent(campaign_id)


def left_out_message(count: int) -> str:
    """What prepare and send say about the recipients left out."""
    have = "has" if count == 1 else "have"
    return (
        f"{count} recipient{'s' if count != 1 else ''} {have} no consent record and"
        f" {'was' if count == 1 else 'were'} left out: import consent_source and consent_at"
    )


def parse_consent_at(text: str, default_zone: str) -> dt.datetime:
    """An ISO 8601 date or date-time as an aware time (see the module doc);
    ``ValueError`` with a message to show."""
    raw = text.strip()
    value = raw[:-1] + "+00:00" if raw[-1:] in ("Z", "z") else raw
    try:
        if len(value) == 10:
            moment = dt.datetime.combine(dt.date.fromisoformat(value), dt.time())
        else:
            moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"consent_at {raw!r} is not an ISO 8601 date or date-time such as 2026-03-01 or 2026-03-01T14:05:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(default_zone))
    return moment.astimezone(dt.timezone.utc)


class RecordColumns:
    """Where an import's record columns are, and how to read them."""

    def __init__(self, names: list[str]) -> None:
        #: Column index of each record column the header names.
        self.at = {name: i for i, name in enumerate(names) if name in RECORD_COLUMNS}
        try:
            self.zone = timezone_name(current_app.config[Keys.TIMEZONE])
        except ValueError:
            self.zone = "UTC"

    def read(self, cells: list[str]) -> dict[str, Any]:
        """The row's non-empty record values; ``ValueError`` naming the
        column at fault."""
        values: dict[str, Any] = {}
        for name, i in self.at.items():
            text = cells[i].strip() if i < len(cells) else ""
            if not text:
                continue
            if name == "timezone":
                try:
                    values[name] = timezone_name(text)
                except ValueError as err:
                    raise ValueError(f"timezone: {err}") from None
            elif name == "consent_source":
                if len(text) > SOURCE_LENGTH:
                    raise ValueError(f"consent_source is longer than {SOURCE_LENGTH} characters")
                values[name] = text
            else:
                values[name] = parse_consent_at(text, self.zone)
        return values
