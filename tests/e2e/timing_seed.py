"""Past sends for the "best time to send" tests: campaigns whose recipients,
in several time zones, got their message at a known local hour, and a known
number of them clicked. Written straight into the database (what a send and
the redirect would have stored), so a test can have thousands of messages.
"""
from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select

UTC = dt.timezone.utc

#: A number of each zone, so a recipient without a timezone column is
#: placed by its number (the area code for New York).
NUMBER_PREFIX = {
    "America/New_York": "+1212",
    "Europe/Berlin": "+4930",
    "Asia/Tokyo": "+813",
}
_serial = itertools.count(1)


@dataclass(frozen=True)
class Send:
    """``messages`` sent at ``hour``:00 local time in ``zone`` on ``day``,
    ``clickers`` of them clicked (at ``click_after`` after the send); with
    ``column`` the recipients carry their zone in the timezone column and a
    Los Angeles number, else they are placed by their number."""

    zone: str
    hour: int
    messages: int
    clickers: int
    column: bool = True
    minute: int = 5
    click_after: dt.timedelta = dt.timedelta(minutes=20)


def _phone(zone: str, column: bool, n: int) -> str:
    """A valid number (a North American exchange never starts with 0 or 1)."""
    prefix = "+1415" if column else NUMBER_PREFIX[zone]
    return f"{prefix}{200 + n // 10000 % 800}{n % 10000:04d}"


def seed_campaign(conn, owner_id: str, day: dt.date, sends: list[Send], name: str = "Past campaign") -> int:
    """One sent campaign with a link, its recipients and their clicks; its id."""
    from flask_smstrack.models import Campaign, Click, Link, Recipient

    first = min(
        dt.datetime.combine(day, dt.time(s.hour, s.minute), tzinfo=ZoneInfo(s.zone)).astimezone(UTC) for s in sends
    )
    campaign_id = conn.execute(
        insert(Campaign.__table__).returning(Campaign.__table__.c.id),
        {"owner_id": owner_id, "name": name, "currency": "USD", "status": "sent", "sent_at": first, "created_at": first},
    ).scalar_one()
    link_id = conn.execute(
        insert(Link.__table__).returning(Link.__table__.c.id),
        {"campaign_id": campaign_id, "code": f"past{campaign_id}x{next(_serial)}",
         "destination_url": "https://shop.example.com/", "append_click_id": True, "created_at": first},
    ).scalar_one()
    rows, clicks_wanted = [], []
    for send in sends:
        at = dt.datetime.combine(day, dt.time(send.hour, send.minute), tzinfo=ZoneInfo(send.zone)).astimezone(UTC)
        for i in range(send.messages):
            n = next(_serial)
            rows.append({
                "campaign_id": campaign_id, "phone": _phone(send.zone, send.column, n),
                "timezone": send.zone if send.column else None, "status": "delivered", "segments": 1,
                "message_sid": f"SM{campaign_id:08d}{n:024d}", "sent_at": at, "status_at": at, "created_at": at,
            })
            clicks_wanted.append(at + send.click_after if i < send.clickers else None)
    conn.execute(insert(Recipient.__table__), rows)
    r = Recipient.__table__.c
    ids = conn.execute(select(r.id).where(r.campaign_id == campaign_id).order_by(r.id)).scalars().all()
    clicks = [
        {"click_id": f"c{campaign_id:08d}x{rid:020d}", "created_at": at, "link_id": link_id,
         "campaign_id": campaign_id, "recipient_id": rid, "kind": "human", "is_first": True,
         "human_confirmed": True, "device_type": "mobile"}
        for rid, at in zip(ids, clicks_wanted) if at is not None
    ]
    if clicks:
        conn.execute(insert(Click.__table__), clicks)
    return campaign_id
