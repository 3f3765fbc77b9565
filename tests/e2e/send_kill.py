"""What the send tests share: a campaign ready to send, a ``kill -9`` of the
sending worker in the middle of a request to Twilio, and the message that
kill left in an unknown state."""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
from pathlib import Path

from sqlalchemy import text, update

from flask_smstrack.models import Recipient

from .browser import BIN
from .seed import Seed
from .support import ROOT

PASSWORD = "correct horse battery"


def seed_send(env: dict[str, str], owner: str, first_number: int, count: int) -> int:
    """An admin ``owner``, a campaign with a link, one variant and ``count``
    recipients numbered from (415) 555-``first_number``; the campaign's id."""
    with Seed(env) as seed:
        seed.user(owner, PASSWORD, admin=True)
        campaign_id = seed.campaign(owner, name="Spring sale", currency="USD", cost_per_segment="0.0079")
        seed.link(campaign_id, "https://shop.example.com/spring")
        seed.variant(campaign_id, "A", "Hi {first_name}, 20% off today: {link}")
        people = "phone,first_name\n" + "".join(
            f"(415) 555-{first_number + i:04d},P{i}\n" for i in range(count))
        assert seed.recipients(campaign_id, people) == count
    return campaign_id


def worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    """``flask smstrack worker``, its output appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [str(BIN / "flask"), "--app", "wsgi", "smstrack", "worker"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class KillMidSend:
    """The fake Twilio's ``on_create``: when Twilio has read the ``at``-th
    request (and will create its message), the first of ``workers`` and its
    work-horse die before the answer. ``killed`` lists their pids."""

    def __init__(self, twilio, workers: list[subprocess.Popen], at: int) -> None:
        self.twilio, self.workers, self.at = twilio, workers, at
        self.killed: list[int] = []

    def __call__(self, form: dict[str, str]) -> None:
        if len(self.twilio.creates) + 1 == self.at and not self.killed:
            victim = self.workers[0]
            for pid in [victim.pid, *children(victim.pid)]:
                os.kill(pid, signal.SIGKILL)
                self.killed.append(pid)
            victim.wait(timeout=10)


def left_unknown(engine, campaign_id: int, *, move_claim_back: bool) -> int:
    """How many of the campaign's messages the kill left claimed without a
    SID. With ``move_claim_back``, their claims are moved two minutes back,
    as if the next worker had started that much later (through the model's
    column, so SQLite stores the time as the app does)."""
    with engine.begin() as conn:
        unknown = conn.execute(text(
            "SELECT count(*) FROM smstrack_recipients WHERE campaign_id = :c"
            " AND status = 'sending' AND message_sid IS NULL"), {"c": campaign_id}).scalar()
        if move_claim_back:
            r = Recipient.__table__.c
            conn.execute(
                update(Recipient.__table__)
                .where(r.campaign_id == campaign_id, r.status == "sending", r.message_sid.is_(None))
                .values(sent_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=2))
            )
    return unknown


def sids(engine, campaign_id: int) -> list[tuple[str, str | None]]:
    """Each recipient's number and message SID."""
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT phone, message_sid FROM smstrack_recipients WHERE campaign_id = :c"), {"c": campaign_id}).all()


def texted_once(twilio, rows, count: int) -> str:
    """Check that each of ``count`` recipients got exactly one message at the
    fake Twilio and stored its SID; a line of counts for the test's output."""
    per_number: dict[str, int] = {}
    for message in twilio.messages:
        per_number[message["to"]] = per_number.get(message["to"], 0) + 1
    twice = sum(1 for n in per_number.values() if n > 1)
    assert len(per_number) == count and set(per_number.values()) == {1}, per_number
    assert len(twilio.creates) == count
    assert len(rows) == count and all(sid for _, sid in rows)
    assert {sid for _, sid in rows} == {m["sid"] for m in twilio.messages}
    return f"messages at Twilio {len(twilio.messages)}, create requests {len(twilio.creates)}, numbers texted twice {twice}"
