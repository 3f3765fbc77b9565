"""When each recipient of a send may get its message: quiet hours and
``send --at``, in the recipient's own time zones (see :mod:`.quiet`).

A send asks :meth:`Schedule.hold` about each ready recipient just before
claiming it, and again just before calling the provider: ``None`` means
now; otherwise the recipient is held until the moment given, and the send
either waits for it or leaves the recipient ``ready`` for a later run.
"""
from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass, field

from flask import current_app

from ..config import Keys
from .quiet import (
    QuietHours,
    QuietHoursError,
    behind_zone,
    next_local,
    next_open,
    quiet_hours,
    recipient_zones,
    timezone_name,
)

#: A run started (or run again) less than this after a zone's ``--at`` time
#: still sends that zone's recipients at once rather than the next day, so an
#: interrupted run goes on, and one run from cron every few minutes works.
AT_GRACE = dt.timedelta(hours=1)

#: Why a recipient waits.
QUIET = "quiet"
AT = "at"


class Clock:
    """The time and the sleep of a send; tests pass a simulated one."""

    def now(self) -> dt.datetime:
        """The current time, aware, in UTC."""
        return dt.datetime.now(dt.timezone.utc)

    def monotonic(self) -> float:
        """Seconds for pacing, that never go back."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


def app_clock() -> Clock:
    """The clock of the app's sends: ``app.extensions["smstrack_clock"]``
    when a test put a simulated one there, else the real time."""
    return current_app.extensions.get("smstrack_clock") or Clock()


class Pacer:
    """Starts one request per ``1 / rate`` seconds at most."""

    def __init__(self, rate: float, clock: Clock | None = None) -> None:
        self.interval = 1.0 / rate
        self.next_at: float | None = None
        self.clock = clock or Clock()

    def wait(self) -> None:
        now = self.clock.monotonic()
        while self.next_at is not None and now < self.next_at:
            self.clock.sleep(self.next_at - now)
            now = self.clock.monotonic()
        self.next_at = now + self.interval


class Hold:
    """Why and until when a recipient waits."""

    __slots__ = ("reason", "until", "zone")

    def __init__(self, reason: str, until: dt.datetime | None, zone: str | None) -> None:
        self.reason = reason
        #: ``None``: never outside quiet hours in all its zones.
        self.until = until
        self.zone = zone

    def key(self) -> tuple:
        return (self.until or dt.datetime.max.replace(tzinfo=dt.timezone.utc), self.reason, self.zone or "")


@dataclass
class HeldGroup:
    """Recipients held for one reason until one moment."""

    reason: str
    #: ``None`` for recipients that can never be sent outside quiet hours
    #: in all of their candidate zones.
    until: dt.datetime | None
    #: The zone whose quiet hours end (or whose ``--at`` time comes) then.
    zone: str | None
    count: int

    def local_time(self) -> str | None:
        """``until`` on the clock of ``zone``, as ``HH:MM``."""
        if self.until is None or self.zone is None:
            return None
        from .quiet import zone

        return f"{self.until.astimezone(zone(self.zone)):%H:%M}"

    def describe(self, now: dt.datetime | None = None) -> str:
        """``312 held by quiet hours until 08:00 in America/Los_Angeles (15:00 UTC)``."""
        if self.until is None:
            return (
                f"{self.count} held by quiet hours in every one of their possible time zones at once: import a"
                " timezone column for them"
            )
        utc = self.until.astimezone(dt.timezone.utc)
        when = f"{utc:%H:%M} UTC" if now is None or utc.date() == now.astimezone(dt.timezone.utc).date() \
            else f"{utc:%Y-%m-%d %H:%M} UTC"
        what = "held by quiet hours until" if self.reason == QUIET else "scheduled for"
        return f"{self.count} {what} {self.local_time()} in {self.zone} ({when})"


@dataclass
class HeldTally:
    """The recipients one pass of a send held, by reason and moment."""

    counts: Counter = field(default_factory=Counter)

    def add(self, hold: Hold) -> None:
        self.counts[(hold.reason, hold.until, hold.zone)] += 1

    def __len__(self) -> int:
        return sum(self.counts.values())

    def groups(self) -> list[HeldGroup]:
        groups = [HeldGroup(reason, until, zone, n) for (reason, until, zone), n in self.counts.items()]
        return sorted(groups, key=lambda g: Hold(g.reason, g.until, g.zone).key())

    def first(self) -> dt.datetime | None:
        """The earliest moment a held recipient may go."""
        return min((until for (_, until, _) in self.counts if until is not None), default=None)


class Schedule:
    """Quiet hours (``SMSTRACK_QUIET_HOURS``) and an optional local send
    time for one run of a send that started at ``start``."""

    def __init__(
        self, hours: QuietHours | None, at: dt.time | None, start: dt.datetime, fallback: str = "UTC"
    ) -> None:
        if at is not None and hours is not None and hours.covers(at):
            raise QuietHoursError(
                f"{at:%H:%M} is inside the quiet hours {hours} ({Keys.QUIET_HOURS}): pick a time from"
                f" {hours.end:%H:%M} to before {hours.start:%H:%M}"
            )
        self.hours = hours
        self.at = at
        self.start = start
        self.fallback = fallback
        #: Per set of zones: when ``--at`` makes it due, and in which zone.
        self._due: dict[tuple[str, ...], tuple[dt.datetime, str]] = {}
        #: Per set of zones, for the current minute: its hold, if any.
        self._minute: dt.datetime | None = None
        self._holds: dict[tuple[str, ...], Hold | None] = {}

    @classmethod
    def for_app(cls, at: dt.time | None, start: dt.datetime) -> Schedule:
        """The app's quiet hours; raises :class:`.quiet.QuietHoursError`."""
        try:
            fallback = timezone_name(current_app.config[Keys.TIMEZONE])
        except ValueError:
            fallback = "UTC"
        return cls(quiet_hours(), at, start, fallback)

    @property
    def active(self) -> bool:
        """Whether any recipient may be held at all."""
        return self.hours is not None or self.at is not None

    def zones(self, phone: str | None, timezone: str | None) -> tuple[str, ...]:
        return recipient_zones(phone, timezone, self.fallback)

    def hold(self, phone: str | None, timezone: str | None, now: dt.datetime) -> Hold | None:
        """Why and until when the recipient waits at ``now``; ``None`` to
        send it now."""
        if not self.active:
            return None
        zones = self.zones(phone, timezone)
        minute = now.replace(second=0, microsecond=0)
        if minute != self._minute:
            self._minute, self._holds = minute, {}
        if zones not in self._holds:
            self._holds[zones] = self._hold(zones, now)
        return self._holds[zones]

    def _hold(self, zones: tuple[str, ...], now: dt.datetime) -> Hold | None:
        if self.at is not None:
            if zones not in self._due:
                name = behind_zone(zones, self.start)
                self._due[zones] = (next_local(self.at, name, self.start - AT_GRACE), name)
            due, name = self._due[zones]
            if due > now:
                # Whole minutes: the hold is the same for the whole minute.
                return Hold(AT, due, name)
        opening = next_open(self.hours, zones, now)
        if opening is None:
            return Hold(QUIET, None, None)
        until, name = opening
        return None if name is None else Hold(QUIET, until, name)
