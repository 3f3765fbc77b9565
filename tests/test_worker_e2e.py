"""A send on the job queue survives ``kill -9``: the real ``flask smstrack
worker`` sends a campaign through the fake Twilio, is killed (with its
work-horse) in the middle of a request to Twilio, and a second worker takes
the send over. Every recipient gets exactly one message, counted by number
in the fake Twilio's log.

The killed request reached Twilio: its message exists there, but the dead
worker never stored its SID. The second worker sends the others, then asks
Twilio about that one once it can no longer be on its way (a minute after
its claim) and adopts it. The short form moves that claim a minute back
(as if the second worker had started a minute later); the full form
(``FLASK_SMSTRACK_FAULTS=full``) waits for it.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, text, update

from conftest import REDIS_URL, _empty_tables
from test_jobs import forget_queue
from e2e.browser import BIN
from e2e.fake_twilio import FakeTwilio
from e2e.seed import Seed
from e2e.support import ROOT, Cli, poll, stop
from e2e.twilio_app import twilio_env
from flask_smstrack.models import Recipient

RECIPIENTS = 40
KILL_AT = 12
FULL = os.environ.get("FLASK_SMSTRACK_FAULTS") == "full"


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [str(BIN / "flask"), "--app", "wsgi", "smstrack", "worker"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )


def test_killed_worker_send_resumes_without_sending_twice(migrated, tmp_path):
    _empty_tables(migrated)
    prefix = f"t-jobs-{uuid.uuid4().hex[:8]}"
    workers: list[subprocess.Popen] = []
    killed: list[int] = []
    with FakeTwilio() as twilio:
        env = twilio_env(migrated, tmp_path, twilio, "worker-e2e-secret")
        env.update(SMSTRACK_REDIS_URL=REDIS_URL, SMSTRACK_REDIS_PREFIX=prefix, SMSTRACK_SEND_RATE="100",
                   SMSTRACK_JOB_INTERVAL="0")
        with Seed(env) as seed:
            seed.user("shop@example.com", "correct horse battery", admin=True)
            campaign_id = seed.campaign("shop@example.com", name="Spring sale", currency="USD", cost_per_segment="0.0079")
            seed.link(campaign_id, "https://shop.example.com/spring")
            seed.variant(campaign_id, "A", "Hi {first_name}, 20% off today: {link}")
            people = "phone,first_name\n" + "".join(f"(415) 555-{1000 + i:04d},P{i}\n" for i in range(RECIPIENTS))
            assert seed.recipients(campaign_id, people) == RECIPIENTS

        def kill_mid_send(form: dict[str, str]) -> None:
            # In the middle of the KILL_AT-th request: Twilio has read it
            # and will create the message; its sender dies before the answer.
            if len(twilio.creates) + 1 == KILL_AT and not killed:
                worker = workers[0]
                for pid in [worker.pid, *_children(worker.pid)]:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                worker.wait(timeout=10)

        twilio.on_create = kill_mid_send
        log = tmp_path / "worker.log"
        cli = Cli(BIN / "flask", "wsgi", cwd=ROOT, env=env)
        try:
            workers.append(_worker(env, log))
            out = cli("send", str(campaign_id), "--yes", "--no-wait")
            assert f"Send queued as job {prefix}-send-{campaign_id}" in out, out
            poll(lambda: killed, bool, timeout=30)
            assert len(killed) == 2, f"worker and work-horse: {killed}\n{log.read_text()}"
            sent_before = len(twilio.messages)

            engine = create_engine(migrated)
            with engine.begin() as conn:
                unknown = conn.execute(text(
                    "SELECT count(*) FROM smstrack_recipients WHERE campaign_id = :c"
                    " AND status = 'sending' AND message_sid IS NULL"), {"c": campaign_id}).scalar()
                if not FULL:
                    # As if the second worker started a minute later (the
                    # model's column, so SQLite stores the time as the app does).
                    r = Recipient.__table__.c
                    conn.execute(
                        update(Recipient.__table__)
                        .where(r.campaign_id == campaign_id, r.status == "sending", r.message_sid.is_(None))
                        .values(sent_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=2))
                    )
            assert unknown == 1

            started = time.monotonic()
            workers.append(_worker(env, log))
            # The same command follows the job the second worker took over.
            out = cli("send", str(campaign_id), "--yes")
            took = time.monotonic() - started
            assert "1 found already sent at Twilio" in out, out

            per_number = Counter(m["to"] for m in twilio.messages)
            with engine.connect() as conn:
                rows = conn.execute(text(
                    "SELECT phone, message_sid FROM smstrack_recipients WHERE campaign_id = :c"), {"c": campaign_id}).all()
            engine.dispose()
        finally:
            for worker in workers:
                stop(worker)
            forget_queue(prefix)
    print(
        f"\nrecipients {RECIPIENTS}, messages at Twilio before the kill {sent_before}, after {len(twilio.messages)},"
        f" create requests {len(twilio.creates)}, numbers texted twice {sum(1 for n in per_number.values() if n > 1)},"
        f" left unknown by the kill {unknown}, second worker done in {took:.1f} s ({'full' if FULL else 'short'} form)"
    )
    assert len(per_number) == RECIPIENTS and set(per_number.values()) == {1}, per_number
    assert len(twilio.creates) == RECIPIENTS
    assert len(rows) == RECIPIENTS and all(sid for _, sid in rows)
    assert {sid for _, sid in rows} == {m["sid"] for m in twilio.messages}
    assert re.search(r"Sent \d+ messages", out)
