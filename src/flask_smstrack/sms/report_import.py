"""Delivery and click reports of other SMS platforms (SimpleTexting, EZ
Texting, or any CSV), read into a campaign whose messages were exported
for them (``flask smstrack export-messages``).

Each platform has a default map from its report's columns to our fields;
``overrides`` (``--map column=field``) change it. The fields:

``phone`` (required)
    the recipient's number; a row for a number the campaign does not have
    is an error.
``status``
    the platform's delivery status, read as ours (``delivered``,
    ``undelivered``, ``failed``, ``sent``); a status only moves forward. A
    message without a provider id is given ``<platform>-report-<recipient id>``,
    so the reports count it as one with a delivery receipt.
``delivered_at``
    when it was delivered (ISO 8601, or ``YYYY-MM-DD HH:MM[:SS]`` in UTC).
``clicked``
    whether the recipient clicked the platform's link (yes/no, true/false,
    1/0 or a count); counted in the result only: the exported messages
    carry our own tracked links, whose clicks the reports count.
``cost``
    the message's price in the campaign's currency; the campaign's cost
    becomes their sum unless it is priced per segment or per message (see
    :mod:`.provider_costs`).
``segments``
    the message's segments (parts).

A row with a problem is left out and reported with its line and column;
the other rows are read.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from flask import current_app
from sqlalchemy import func, select, update

from ..config import Keys
from ..models import Recipient, utcnow
from ..state import get_state
from .provider_costs import apply_reported_costs
from .receipts import STATUS_RANK
from .recipients import ImportError_, normalize_phone
from .suppression import phone_hasher

FIELDS = ("phone", "status", "delivered_at", "clicked", "cost", "segments")

#: Each platform's report columns for each field, as they name them in their
#: exports (compared without case, spaces or underscores); the first found wins.
PLATFORMS: dict[str, dict[str, tuple[str, ...]]] = {
    "simpletexting": {
        "phone": ("Phone", "Phone Number", "Contact Phone"),
        "status": ("Status", "Delivery Status", "Message Status"),
        "delivered_at": ("Delivered At", "Delivery Date", "Date", "Sent At"),
        "clicked": ("Clicked", "Link Clicked", "Clicks"),
        "cost": ("Cost", "Credits Cost"),
        "segments": ("Segments", "Credits", "Credits Used"),
    },
    "eztexting": {
        "phone": ("PhoneNumber", "Phone Number", "Phone"),
        "status": ("Status", "DeliveryStatus", "Delivery Status"),
        "delivered_at": ("DeliveredDate", "Delivered Date", "DeliveryDate", "SentDate", "Date"),
        "clicked": ("Clicked", "LinkClicks", "Link Clicks", "Clicks"),
        "cost": ("Cost", "Price"),
        "segments": ("Segments", "MessageParts", "Credits"),
    },
    "generic": {name: (name,) for name in FIELDS},
}

#: Platforms' delivery statuses (lower case, without spaces), as ours.
STATUSES = {
    "delivered": "delivered", "deliveredtohandset": "delivered", "received": "delivered", "success": "delivered",
    "sent": "sent", "senttocarrier": "sent", "queued": "queued", "pending": "queued", "accepted": "accepted",
    "undelivered": "undelivered", "notdelivered": "undelivered", "bounced": "undelivered", "rejected": "undelivered",
    "expired": "undelivered", "optedout": "undelivered", "failed": "failed", "error": "failed", "invalid": "failed",
    "cancelled": "canceled", "canceled": "canceled",
}
_YES = {"yes", "y", "true", "1", "clicked"}
_NO = {"no", "n", "false", "0", "", "notclicked"}
#: Statuses an imported one may replace: those of a lower rank, and the
#: statuses of messages not handed to any provider by us.
_BEFORE = {"pending": 0, "ready": 0, "exported": 0}


def _key(name: str) -> str:
    return "".join(name.lower().replace("_", " ").split())


def parse_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """``column=field`` pairs as ``{field: column}``; :class:`ImportError_` for a bad one."""
    out: dict[str, str] = {}
    for pair in pairs:
        column, sep, name = pair.partition("=")
        column, name = column.strip(), name.strip().lower()
        if not sep or not column:
            raise ImportError_(f"--map {pair!r}: write it as COLUMN=FIELD, e.g. 'Mobile Number=phone'")
        if name not in FIELDS:
            raise ImportError_(f"--map {pair!r}: the field must be one of {', '.join(FIELDS)}")
        out[name] = column
    return out


def column_map(platform: str, header: list[str], overrides: dict[str, str] | None = None) -> dict[str, int]:
    """``{field: column index}`` for ``header``; :class:`ImportError_` when no
    phone column is found, or an override names a column not in the file."""
    if platform not in PLATFORMS:
        raise ImportError_(f"unknown platform {platform!r}: use one of {', '.join(PLATFORMS)}")
    keys = [_key(h) for h in header]
    found: dict[str, int] = {}
    for name, column in (overrides or {}).items():
        if _key(column) not in keys:
            raise ImportError_(f"--map {column}={name}: no column {column!r} in the first line")
        found[name] = keys.index(_key(column))
    for name, columns in PLATFORMS[platform].items():
        if name in found:
            continue
        index = next((keys.index(_key(c)) for c in columns if _key(c) in keys), None)
        if index is not None and index not in found.values():
            found[name] = index
    if "phone" not in found:
        names = ", ".join(repr(c) for c in PLATFORMS[platform]["phone"])
        raise ImportError_(f"no phone column: name one of {names} in the first line, or pass --map COLUMN=phone")
    return found


@dataclass
class ReportRow:
    line: int
    phone: str
    status: str | None = None
    delivered_at: dt.datetime | None = None
    clicked: bool | None = None
    cost: Decimal | None = None
    segments: int | None = None


def _moment(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def read_row(line: int, cells: list[str], columns: dict[str, int], header: list[str], region: str) -> ReportRow:
    """One report row as a :class:`ReportRow`; ``ValueError`` names the
    line, the column and the rule of its first problem."""
    def cell(name: str) -> str:
        index = columns.get(name)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    def bad(name: str, why: str) -> ValueError:
        return ValueError(f"line {line}, column {header[columns[name]]!r} ({name}): {why}")

    try:
        row = ReportRow(line, normalize_phone(cell("phone"), region))
    except ValueError as err:
        raise bad("phone", f"{str(err)[:80]}: not a number that can be texted") from None
    if raw := cell("status"):
        row.status = STATUSES.get(_key(raw))
        if row.status is None:
            raise bad("status", f"{raw[:40]!r} is not a delivery status we know ({', '.join(sorted(set(STATUSES)))})")
    if raw := cell("delivered_at"):
        try:
            row.delivered_at = _moment(raw)
        except ValueError:
            raise bad("delivered_at", f"{raw[:40]!r} is not a time such as 2026-11-27T10:05:00Z") from None
    if (raw := cell("clicked").lower()) or "clicked" in columns:
        if raw.isdigit():
            row.clicked = int(raw) > 0
        elif _key(raw) in _YES | _NO:
            row.clicked = _key(raw) in _YES
        else:
            raise bad("clicked", f"{raw[:40]!r} is not yes/no, true/false or a number of clicks")
    if raw := cell("cost").lstrip("$€£"):
        try:
            row.cost = Decimal(raw)
        except InvalidOperation:
            raise bad("cost", f"{raw[:40]!r} is not an amount such as 0.0079") from None
        if not row.cost.is_finite() or row.cost < 0 or row.cost >= 10**14:
            raise bad("cost", "must be an amount of 0 or more")
    if raw := cell("segments"):
        if not raw.isdigit() or not 0 < int(raw) <= 100:
            raise bad("segments", f"{raw[:40]!r} is not a number of segments from 1 to 100")
        row.segments = int(raw)
    return row


@dataclass
class ReportResult:
    #: Rows that matched a recipient and were stored.
    matched: int = 0
    #: Of those, the ones whose status moved forward.
    updated: int = 0
    #: Rows whose ``clicked`` said yes (the platform's count).
    clicked: int = 0
    #: ``(line, message)`` of the rows left out.
    errors: list[tuple[int, str]] = field(default_factory=list)
    #: The campaign's cost after the import, when the prices set it.
    cost: Decimal | None = None


def import_report(
    campaign_id: int, rows: Iterable[tuple[int, list[str]]], platform: str, *,
    overrides: dict[str, str] | None = None, progress: Callable[[int], None] | None = None,
) -> ReportResult:
    """Read a platform's report (``rows`` as :func:`.recipients.read_csv`
    gives them, header first) into the campaign's recipients."""
    progress = progress or (lambda n: None)
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        raise ImportError_("the file is empty")
    header = first[1]
    columns = column_map(platform, header, overrides)
    region = current_app.config[Keys.DEFAULT_REGION]
    session = get_state().db.session
    r = Recipient.__table__.c
    hasher = phone_hasher()
    known = {
        key: rid
        for rid, phone, digest in session.execute(
            select(r.id, r.phone, r.phone_hash).where(r.campaign_id == campaign_id)
        ).all()
        for key in (phone, digest) if key
    }
    session.commit()
    result = ReportResult()
    rank = {**STATUS_RANK, **_BEFORE}
    for line, cells in rows:
        progress(1)
        if not any(c.strip() for c in cells):
            continue
        try:
            row = read_row(line, cells, columns, header, region)
        except ValueError as err:
            result.errors.append((line, str(err)))
            continue
        recipient_id = known.get(row.phone) or known.get(hasher(row.phone))
        if recipient_id is None:
            missing = f"line {line}: no recipient of campaign {campaign_id} has the number ending {row.phone[-2:]}"
            result.errors.append((line, missing))
            continue
        result.matched += 1
        result.clicked += bool(row.clicked)
        values: dict = {}
        if row.cost is not None:
            values["cost"] = row.cost
        if row.segments is not None:
            values["segments"] = row.segments
        if values:
            session.execute(update(Recipient.__table__).where(r.id == recipient_id).values(**values))
        if row.status is not None:
            lower = [name for name, n in rank.items() if n < rank[row.status]]
            moved = session.execute(
                update(Recipient.__table__)
                .where(r.id == recipient_id, r.status.in_(lower))
                .values(
                    status=row.status, status_at=row.delivered_at or utcnow(),
                    # Receipts count only for messages with an id: one that names the report.
                    message_sid=func.coalesce(r.message_sid, f"{platform}-report-{recipient_id}"),
                )
            ).rowcount
            result.updated += moved
    session.commit()
    result.cost = apply_reported_costs(campaign_id)
    return result
