"""Quiet hours in each recipient's own time zone.

``SMSTRACK_QUIET_HOURS`` (``"21:00-08:00"`` by default, the TCPA window) are
local hours of the recipient during which no message is sent; the window may
wrap midnight, and ``None`` (or an empty string) sends at any hour.

A recipient's time zones, in this order:

1. its ``timezone`` column (from the import): the recipient's own word wins;
2. else the zones ``phonenumbers`` gives for the number (an area code in the
   US and Canada, a geographic prefix elsewhere; a mobile number without a
   geographic prefix gets the zones of its whole country, e.g. eight for an
   Australian mobile);
3. when ``phonenumbers`` knows none (``Etc/Unknown``): the zones of the
   number's country calling code, and when that is unknown too,
   ``SMSTRACK_TIMEZONE``.

A number with several candidate zones is sendable only when it is outside
quiet hours in *every* one of them: nobody is texted early or late whichever
zone the phone is really in. For a send at a chosen local time (``send --at``)
such a number is due at that time in the zone whose clock is furthest behind,
so it is no earlier than that time anywhere.

Quiet hours start and end on whole minutes and time zone offsets are whole
minutes, so whether a set of zones is quiet changes only on a minute.
"""
from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from phonenumbers import timezone as _number_zones
from phonenumbers.tzdata import TIMEZONE_DATA

from ..config import Keys
from .twilio import SendError

UTC = dt.timezone.utc
#: What ``phonenumbers`` answers for a number it cannot place.
UNKNOWN_ZONE = _number_zones.UNKNOWN_TIMEZONE
_CLOCK_RE = re.compile(r"^\s*([01]?[0-9]|2[0-3]):([0-5][0-9])\s*$")
#: Days looked ahead for a moment outside quiet hours in every zone.
_LOOKAHEAD_DAYS = 3


class QuietHoursError(SendError):
    """``SMSTRACK_QUIET_HOURS`` (or a send time) cannot be read."""


def parse_clock(text: str) -> dt.time:
    """``"8:00"`` or ``"21:30"`` as a time; ``ValueError`` otherwise."""
    match = _CLOCK_RE.match(text or "")
    if match is None:
        raise ValueError(f"{text!r} is not a time of day as HH:MM (00:00 to 23:59)")
    return dt.time(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class QuietHours:
    """Local hours from ``start`` (included) to ``end`` (excluded); when
    ``end`` is before ``start`` the window wraps midnight."""

    start: dt.time
    end: dt.time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def covers(self, local: dt.time) -> bool:
        """Whether the local time of day ``local`` is inside the window."""
        local = local.replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def parse_quiet_hours(value: object) -> QuietHours | None:
    """``"21:00-08:00"`` as :class:`QuietHours`; ``None`` or ``""`` for none.

    Raises :class:`QuietHoursError` naming ``SMSTRACK_QUIET_HOURS``.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, QuietHours):
        return value
    problem = None
    if isinstance(value, str) and value.count("-") == 1:
        first, second = value.split("-")
        try:
            start, end = parse_clock(first), parse_clock(second)
        except ValueError as err:
            problem = str(err)
        else:
            if start != end:
                return QuietHours(start, end)
            problem = "the start and the end are the same"
    raise QuietHoursError(
        f"{Keys.QUIET_HOURS} must be local hours as \"HH:MM-HH:MM\" (such as \"21:00-08:00\", which may wrap"
        f" midnight) or None to send at any hour, not {value!r}" + (f": {problem}" if problem else "")
    )


def quiet_hours() -> QuietHours | None:
    """The app's quiet hours (``SMSTRACK_QUIET_HOURS``), or ``None``."""
    from flask import current_app

    return parse_quiet_hours(current_app.config[Keys.QUIET_HOURS])


# -- time zones ----------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The :class:`~zoneinfo.ZoneInfo` of an IANA name (cached)."""
    return ZoneInfo(name)


@functools.lru_cache(maxsize=1)
def _zones_by_lower_name() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def timezone_name(text: str) -> str:
    """The IANA name ``text`` spells (any case), or ``ValueError`` to show."""
    name = (text or "").strip()
    if not name:
        raise ValueError("the time zone is empty")
    if len(name) <= 64 and name != UNKNOWN_ZONE:
        try:
            zone(name)
            return name
        except (ZoneInfoNotFoundError, ValueError, OSError):
            found = _zones_by_lower_name().get(name.lower())
            if found is not None:
                return found
    raise ValueError(f"{name!r} is not an IANA time zone name such as America/New_York")


def _known(names: tuple[str, ...]) -> tuple[str, ...]:
    known = []
    for name in names:
        try:
            zone(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            continue
        known.append(name)
    return tuple(known)


@functools.lru_cache(maxsize=1 << 17)
def number_zones(phone: str) -> tuple[str, ...]:
    """The time zones of a number in E.164, from ``phonenumbers``; ``()``
    when neither the number nor its country calling code places it.

    Cached by the number, the only thing the answer depends on (its type and
    prefix): a send looks up every recipient again on each pass.
    """
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return ()
    zones = tuple(_number_zones.time_zones_for_number(number))
    if not zones or zones == (UNKNOWN_ZONE,):
        zones = tuple(TIMEZONE_DATA.get(str(number.country_code), ()))
    return _known(tuple(z for z in zones if z != UNKNOWN_ZONE))


def recipient_zones(phone: str | None, timezone: str | None, fallback: str) -> tuple[str, ...]:
    """A recipient's candidate zones: its ``timezone`` column, else its
    number's zones, else ``fallback`` (``SMSTRACK_TIMEZONE``)."""
    if timezone:
        return (timezone,)
    zones = number_zones(phone) if phone else ()
    return zones or (fallback,)


# -- windows -------------------------------------------------------------


def is_quiet(hours: QuietHours | None, zones: tuple[str, ...], at: dt.datetime) -> bool:
    """Whether ``at`` (aware) falls in quiet hours in any of ``zones``."""
    if hours is None:
        return False
    return any(hours.covers(at.astimezone(zone(name)).time()) for name in zones)


def next_open(
    hours: QuietHours | None, zones: tuple[str, ...], after: dt.datetime
) -> tuple[dt.datetime, str | None] | None:
    """The first moment at or after ``after`` outside quiet hours in every
    one of ``zones``, and the zone whose quiet hours end then (``None`` when
    ``after`` itself is outside them); ``None`` when there is no such moment
    (zones so far apart that one of them is always quiet)."""
    if not is_quiet(hours, zones, after):
        return after, None
    assert hours is not None
    candidates = []
    for name in zones:
        tz = zone(name)
        today = after.astimezone(tz).date()
        for days in range(-1, _LOOKAHEAD_DAYS):
            # A wall time inside a DST gap is read with the offset before the
            # change: that lands after the gap, never before it.
            instant = dt.datetime.combine(today + dt.timedelta(days=days), hours.end, tzinfo=tz).astimezone(UTC)
            if instant > after:
                candidates.append((instant, name))
    for instant, name in sorted(candidates):
        if not is_quiet(hours, zones, instant):
            return instant, name
    return None


def behind_zone(zones: tuple[str, ...], at: dt.datetime) -> str:
    """The zone of ``zones`` whose clock is furthest behind at ``at``."""
    return min(zones, key=lambda name: (at.astimezone(zone(name)).utcoffset(), name))


def next_local(local: dt.time, name: str, after: dt.datetime) -> dt.datetime:
    """The first moment at or after ``after`` when the clock in zone
    ``name`` shows ``local`` (a time skipped by a DST change is read with
    the offset before the change, so it lands after the change)."""
    tz = zone(name)
    day = after.astimezone(tz).date()
    for days in range(0, 3):
        instant = dt.datetime.combine(day + dt.timedelta(days=days), local, tzinfo=tz).astimezone(UTC)
        if instant >= after:
            return instant
    raise AssertionError("unreachable")  # pragma: no cover
