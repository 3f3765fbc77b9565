"""The best time to send: an owner's past campaigns grouped by the local
hour (and weekday) each message was sent at, in the recipient's own time
zone, with the share of recipients who clicked.

The evidence of an hour is its recipients (messages delivered, or whose
delivery is not known to have failed: the CTR denominator), those of them
with a human click (a unique click, stored or kept by a purge), the number
of campaigns behind it and a 95% Wilson score interval of its CTR. The
recommendation is the hour with the best *lower* bound among the hours
outside quiet hours (``SMSTRACK_QUIET_HOURS``) backed by at least
``SMSTRACK_BEST_TIME_MIN_CAMPAIGNS`` campaigns and
``SMSTRACK_BEST_TIME_MIN_MESSAGES`` messages; with less, nothing is
recommended and :attr:`BestTime.reason` says what is missing.

A recipient's zone is the one sending uses (:mod:`..sms.quiet`): its
``timezone`` column, else its number's, else ``SMSTRACK_TIMEZONE``; a
number with several candidate zones counts in the one whose clock is
furthest behind, the zone ``send --at`` schedules it in. The database
groups messages by campaign, timezone column, number prefix and 15-minute
UTC bucket (every zone's hours start on a quarter hour); Python turns each
group, not each message, into a local hour. The number prefix is the
country code and the next :data:`PREFIX_DIGITS` digits, which is what
``phonenumbers`` places a North American number by (an area code split
between zones is told apart by its exchange).
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from flask import current_app
from sqlalchemy import and_, case, func, select, union, union_all

from ..config import Keys
from ..models import SENT_CONDITION, Campaign, Click, Recipient, RecipientRollup
from ..sms.quiet import QuietHours, behind_zone, quiet_hours, recipient_zones, timezone_name, zone
from ..state import get_state
from .campaign import ratio
from .rollup_queries import _bucket, dialect_name
from .stats import wilson_interval
from .tables import Column, Table

#: Digits after the ``+`` of a number that decide its zone (see above).
PREFIX_DIGITS = 7
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_INTERVAL_Q = Decimal("0.000001")

_r = Recipient.__table__.c
_c = Click.__table__.c
_p = RecipientRollup.__table__.c


@dataclass
class Cell:
    """What was sent in one local hour (of one weekday, or of every day)."""

    hour: int
    weekday: int | None = None
    messages: int = 0
    clickers: int = 0
    campaign_ids: set[int] = field(default_factory=set)
    #: Some minute of the hour is inside quiet hours.
    quiet: bool = False

    @property
    def campaigns(self) -> int:
        return len(self.campaign_ids)

    @property
    def label(self) -> str:
        return f"{self.hour:02d}:00-{(self.hour + 1) % 24:02d}:00"

    @property
    def ctr(self) -> Decimal | None:
        return ratio(self.clickers, self.messages)

    def interval(self) -> tuple[Decimal, Decimal] | None:
        bounds = wilson_interval(self.clickers, self.messages)
        if bounds is None:
            return None
        return tuple(Decimal(repr(b)).quantize(_INTERVAL_Q) for b in bounds)  # type: ignore[return-value]

    @property
    def ctr_low(self) -> Decimal | None:
        bounds = self.interval()
        return None if bounds is None else bounds[0]

    @property
    def ctr_high(self) -> Decimal | None:
        bounds = self.interval()
        return None if bounds is None else bounds[1]

    def row(self, eligible: bool, best: bool) -> dict:
        return {
            "hour": self.hour, "weekday": None if self.weekday is None else WEEKDAYS[self.weekday],
            "local_time": self.label, "messages": self.messages, "unique_clicks": self.clickers,
            "campaigns": self.campaigns, "ctr": self.ctr, "ctr_low": self.ctr_low, "ctr_high": self.ctr_high,
            "quiet": self.quiet, "eligible": eligible, "best": best,
        }


@dataclass
class BestTime:
    """An owner's evidence per local hour of sending, and the hour to pick."""

    #: One per local hour, 0 to 23.
    hours: list[Cell]
    #: Hours of each weekday that had messages, by weekday then hour.
    weekday_hours: list[Cell]
    #: Unique human clicks by the local weekday and hour of the click:
    #: ``{(weekday, hour): clicks}``.
    click_times: dict[tuple[int, int], int]
    min_campaigns: int
    min_messages: int
    quiet: QuietHours | None
    campaigns: int
    messages: int
    best: Cell | None = None
    #: Why nothing is recommended, when nothing is.
    reason: str | None = None

    def eligible(self, cell: Cell) -> bool:
        return not cell.quiet and cell.campaigns >= self.min_campaigns and cell.messages >= self.min_messages

    @property
    def at(self) -> dt.time | None:
        """The local send time recommended (the start of the best hour)."""
        return None if self.best is None else dt.time(self.best.hour, 0)

    def summary(self) -> str:
        """``Best time to send: 10:00-11:00 local, CTR 14.2% (12.1-16.5%), 5 campaigns, 4,210 messages``,
        or the reason there is none."""
        if self.best is None:
            return f"No best time to send yet: {self.reason}"
        b = self.best
        low, high = b.interval() or (Decimal(0), Decimal(0))
        return (
            f"Best time to send: {b.label} local, CTR {_pct(b.ctr)} ({_pct(low)[:-1]}-{_pct(high)}),"
            f" {b.campaigns:,} campaign{'s' if b.campaigns != 1 else ''}, {b.messages:,} messages"
        )

    def rows(self) -> list[dict]:
        """The per-hour table's rows: the same numbers in the API, CSV and dashboard."""
        return [c.row(self.eligible(c), c is self.best) for c in self.hours]

    def table(self) -> Table:
        return Table("best_time", "CTR by local hour of sending", HOUR_COLUMNS, self.rows(), [self.summary()])

    def as_dict(self) -> dict:
        """The API's answer: every rate a fraction, as in the CSV."""
        from .export import table_json

        hours = table_json(self.table())["rows"]
        weekday_hours = table_json(
            Table("weekday_hours", "", HOUR_COLUMNS, [c.row(self.eligible(c), False) for c in self.weekday_hours])
        )["rows"]
        return {
            "recommendation": next((row for row in hours if row["best"]), None),
            "at": None if self.at is None else f"{self.at:%H:%M}",
            "summary": self.summary(),
            "reason": self.reason,
            "campaigns": self.campaigns,
            "messages": self.messages,
            "min_campaigns": self.min_campaigns,
            "min_messages": self.min_messages,
            "quiet_hours": None if self.quiet is None else str(self.quiet),
            "hours": hours,
            "weekday_hours": [{k: v for k, v in row.items() if k != "best"} for row in weekday_hours],
            "clicks_by_local_time": [
                {"weekday": WEEKDAYS[w], "hour": h, "unique_clicks": n} for (w, h), n in sorted(self.click_times.items())
            ],
        }


HOUR_COLUMNS = [
    Column("hour", "Local hour"),
    Column("weekday", "Weekday", "text"),
    Column("local_time", "Local time", "text"),
    Column("messages", "Messages"),
    Column("unique_clicks", "Unique clicks"),
    Column("campaigns", "Campaigns"),
    Column("ctr", "CTR", "rate"),
    Column("ctr_low", "CTR low (95%)", "rate"),
    Column("ctr_high", "CTR high (95%)", "rate"),
    Column("quiet", "In quiet hours", "text"),
    Column("eligible", "Enough data", "text"),
    Column("best", "Best", "text"),
]


def _pct(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _quiet_hour(hours: QuietHours | None, hour: int) -> bool:
    if hours is None:
        return False
    return any(hours.covers(dt.time(hour, minute)) for minute in range(60))


def _setting(key: str) -> int:
    value = current_app.config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RuntimeError(f"{key} must be a whole number of at least 1, not {value!r}")
    return value


class _Zones:
    """The local time of a group: its zone, looked up once per timezone
    column and number prefix."""

    def __init__(self) -> None:
        try:
            self.fallback = timezone_name(current_app.config[Keys.TIMEZONE])
        except ValueError:
            self.fallback = "UTC"
        self._zones: dict[tuple[str | None, str | None], tuple[str, ...]] = {}

    def local(self, timezone: str | None, prefix: str | None, phone: str | None, bucket: int) -> dt.datetime:
        key = (timezone, prefix)
        zones = self._zones.get(key)
        if zones is None:
            try:
                zones = recipient_zones(phone, timezone_name(timezone) if timezone else None, self.fallback)
            except ValueError:
                zones = recipient_zones(phone, None, self.fallback)
            self._zones[key] = zones
        at = dt.datetime.fromtimestamp(bucket, dt.timezone.utc)
        name = zones[0] if len(zones) == 1 else behind_zone(zones, at)
        return at.astimezone(zone(name))


def _owned(owner_id: str | None):
    return select(Campaign.id).where(Campaign.owner_id == owner_id).scalar_subquery()


def _send_groups(owner_id: str | None, dialect: str):
    """``(campaign_id, timezone, prefix, bucket, phone, messages, clickers)``:
    messages to the owner's recipients grouped as described above."""
    owned = _owned(owner_id)
    clicked = union(
        select(_c.recipient_id.label("recipient_id")).where(
            _c.campaign_id.in_(owned), _c.recipient_id.is_not(None), _c.kind == "human"
        ),
        select(_p.recipient_id).where(_p.campaign_id.in_(owned), _p.click_pk.is_not(None)),
    ).subquery("clicked")
    prefix = func.substr(_r.phone, 1, PREFIX_DIGITS + 1)
    bucket = _bucket(_r.sent_at, dialect)
    counted = ~and_(_r.message_sid.is_not(None), _r.status.in_(("undelivered", "failed")))
    return (
        select(
            _r.campaign_id, _r.timezone, prefix, bucket, func.min(_r.phone),
            func.sum(case((counted, 1), else_=0)),
            func.sum(case((and_(counted, clicked.c.recipient_id.is_not(None)), 1), else_=0)),
        )
        .select_from(Recipient.__table__.outerjoin(clicked, clicked.c.recipient_id == _r.id))
        .where(_r.campaign_id.in_(owned), _r.sent_at.is_not(None), *SENT_CONDITION)
        .group_by(_r.campaign_id, _r.timezone, prefix, bucket)
    )


def _click_groups(owner_id: str | None, dialect: str):
    """``(timezone, prefix, bucket, phone, clicks)``: the owner's unique
    human clicks (stored, and first clicks kept by a purge) grouped by the
    clicker's timezone column, number prefix and 15-minute bucket."""
    owned = _owned(owner_id)
    firsts = union_all(
        select(_c.recipient_id.label("recipient_id"), _c.created_at.label("at")).where(
            _c.campaign_id.in_(owned), _c.kind == "human", _c.is_first
        ),
        select(_p.recipient_id, _p.clicked_at).where(_p.campaign_id.in_(owned), _p.click_pk.is_not(None)),
    ).subquery("firsts")
    prefix = func.substr(_r.phone, 1, PREFIX_DIGITS + 1)
    bucket = _bucket(firsts.c.at, dialect)
    return (
        select(_r.timezone, prefix, bucket, func.min(_r.phone), func.count())
        .select_from(firsts.outerjoin(Recipient.__table__, _r.id == firsts.c.recipient_id))
        .where(firsts.c.at.is_not(None))
        .group_by(_r.timezone, prefix, bucket)
    )


def best_time(owner_id: str | None, *, min_campaigns: int | None = None, min_messages: int | None = None) -> BestTime:
    """The evidence and the recommendation for ``owner_id``'s campaigns.

    ``min_campaigns`` and ``min_messages`` default to the app's
    ``SMSTRACK_BEST_TIME_MIN_CAMPAIGNS`` and ``SMSTRACK_BEST_TIME_MIN_MESSAGES``.
    """
    min_campaigns = min_campaigns or _setting(Keys.BEST_TIME_MIN_CAMPAIGNS)
    min_messages = min_messages or _setting(Keys.BEST_TIME_MIN_MESSAGES)
    hours_quiet = quiet_hours()
    session = get_state().db.session
    dialect = dialect_name()
    zones = _Zones()
    hours = [Cell(h, quiet=_quiet_hour(hours_quiet, h)) for h in range(24)]
    by_day: dict[tuple[int, int], Cell] = {}
    campaigns: set[int] = set()
    messages = 0
    for campaign_id, timezone, prefix, bucket, phone, sent, clickers in session.execute(_send_groups(owner_id, dialect)):
        sent, clickers = int(sent or 0), int(clickers or 0)
        if not sent:
            continue
        local = zones.local(timezone, prefix, phone, int(bucket))
        key = (local.weekday(), local.hour)
        day = by_day.get(key) or by_day.setdefault(key, Cell(local.hour, local.weekday(), quiet=hours[local.hour].quiet))
        for cell in (hours[local.hour], day):
            cell.messages += sent
            cell.clickers += clickers
            cell.campaign_ids.add(campaign_id)
        campaigns.add(campaign_id)
        messages += sent
    click_times: dict[tuple[int, int], int] = defaultdict(int)
    for timezone, prefix, bucket, phone, clicks in session.execute(_click_groups(owner_id, dialect)):
        local = zones.local(timezone, prefix, phone, int(bucket))
        click_times[(local.weekday(), local.hour)] += int(clicks)
    result = BestTime(
        hours, [by_day[k] for k in sorted(by_day)], dict(click_times), min_campaigns, min_messages, hours_quiet,
        len(campaigns), messages,
    )
    eligible = [c for c in hours if result.eligible(c)]
    if eligible:
        result.best = max(eligible, key=lambda c: (c.ctr_low, c.messages, -c.hour))
    else:
        result.reason = _not_enough(result)
    return result


def _not_enough(result: BestTime) -> str:
    need = (
        f"need {result.min_campaigns} campaigns and {result.min_messages:,} messages sent in the same local hour"
    )
    if result.quiet is not None:
        need += f" outside the quiet hours {result.quiet}"
    backed = [c for c in result.hours if c.campaigns >= result.min_campaigns and c.messages >= result.min_messages]
    if backed:
        return (
            f"every local hour with enough data ({', '.join(c.label for c in backed)}) is inside the quiet hours"
            f" {result.quiet}; {need}"
        )
    return (
        f"not enough data: {result.campaigns} campaign{'s' if result.campaigns != 1 else ''},"
        f" {result.messages:,} message{'s' if result.messages != 1 else ''}; {need}"
    )

