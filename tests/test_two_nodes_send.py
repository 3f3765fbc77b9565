"""Two nodes and an RQ worker send a campaign: the owner presses Send on
node A's dashboard, the real ``flask smstrack worker`` sends through the
fake Twilio and is killed (with its work-horse) in the middle of a request
to Twilio; a second worker finds the dead worker's job, runs it again and
finishes the send, while the owner follows the progress on node B. Every
recipient gets exactly one message, counted by number in the fake Twilio's
log.

As in ``test_worker_e2e``, the message the killed request left at Twilio
is adopted once it can no longer be on its way (a minute after its claim):
the short form moves that claim a minute back, the full form
(``FLASK_SMSTRACK_FAULTS=full``) waits for it.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter

from sqlalchemy import create_engine, text, update

from conftest import REDIS_URL, _empty_tables
from e2e.browser import BIN
from e2e.fake_twilio import FakeTwilio
from e2e.seed import Seed
from e2e.support import ROOT, free_port, gunicorn, poll, stop
from e2e.twilio_app import twilio_env
from flask_smstrack.models import Recipient
from test_jobs import forget_queue
from test_jobs_web_e2e import Browser
from test_worker_e2e import FULL, _children, _worker

OWNER = "two-nodes-send@example.com"
PASSWORD = "correct horse battery"
RECIPIENTS = 30
KILL_AT = 9


def test_rq_worker_sends_for_two_nodes_and_survives_kill_9(migrated, tmp_path):
    _empty_tables(migrated)
    prefix = f"t-2send-{uuid.uuid4().hex[:8]}"
    workers: list[subprocess.Popen] = []
    killed: list[int] = []
    with FakeTwilio() as twilio:
        env = twilio_env(migrated, tmp_path, twilio, "two-nodes-send-secret")
        env.update(SMSTRACK_REDIS_URL=REDIS_URL, SMSTRACK_REDIS_PREFIX=prefix, SMSTRACK_SEND_RATE="50",
                   SMSTRACK_JOB_INTERVAL="0")
        with Seed(env) as seed:
            seed.user(OWNER, PASSWORD, admin=True)
            campaign_id = seed.campaign(OWNER, name="Spring sale", currency="USD", cost_per_segment="0.0079")
            seed.link(campaign_id, "https://shop.example.com/spring")
            seed.variant(campaign_id, "A", "Hi {first_name}, 20% off today: {link}")
            people = "phone,first_name\n" + "".join(f"(415) 555-{3000 + i:04d},P{i}\n" for i in range(RECIPIENTS))
            assert seed.recipients(campaign_id, people) == RECIPIENTS

        def kill_mid_send(form: dict[str, str]) -> None:
            # Twilio has read the KILL_AT-th request and will create the
            # message; its sender dies before the answer.
            if len(twilio.creates) + 1 == KILL_AT and not killed:
                worker = workers[0]
                for pid in [worker.pid, *_children(worker.pid)]:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                worker.wait(timeout=10)

        twilio.on_create = kill_mid_send
        log = tmp_path / "worker.log"
        engine = create_engine(migrated)
        try:
            with gunicorn(BIN / "gunicorn", "wsgi:app", port=free_port(), cwd=ROOT, env=env, log=tmp_path / "a.log",
                          workers=2, ready_path="/smstrack/login") as a, \
                 gunicorn(BIN / "gunicorn", "wsgi:app", port=free_port(), cwd=ROOT, env=env, log=tmp_path / "b.log",
                          workers=2, ready_path="/smstrack/login") as b:
                workers.append(_worker(env, log))
                on_a = Browser(a.url)
                on_a.submit("/smstrack/login", "/smstrack/login", email=OWNER, password=PASSWORD)
                send_page = f"/smstrack/campaigns/{campaign_id}/send"
                sending = on_a.submit(send_page, send_page)
                assert "data-smstrack-job=" in sending, sending[:500]
                poll(lambda: killed, bool, timeout=30)
                assert len(killed) == 2, f"worker and work-horse: {killed}\n{log.read_text()}"
                sent_before = len(twilio.messages)

                with engine.begin() as conn:
                    unknown = conn.execute(text(
                        "SELECT count(*) FROM smstrack_recipients WHERE campaign_id = :c"
                        " AND status = 'sending' AND message_sid IS NULL"), {"c": campaign_id}).scalar()
                    if not FULL:  # as if the second worker started a minute later
                        r = Recipient.__table__.c
                        conn.execute(
                            update(Recipient.__table__)
                            .where(r.campaign_id == campaign_id, r.status == "sending", r.message_sid.is_(None))
                            .values(sent_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=2))
                        )
                assert unknown == 1

                # The owner's session from A follows the send on B.
                on_b = Browser(b.url)
                on_b.opener = on_a.opener  # the same cookies
                status_path = f"/smstrack/campaigns/{campaign_id}/jobs/send.json"
                started = time.monotonic()
                workers.append(_worker(env, log))
                seen: list[dict] = []
                while time.monotonic() - started < (150 if FULL else 60):
                    seen.append(json.loads(on_b.get(status_path)))
                    if seen[-1]["status"] == "finished":
                        break
                    time.sleep(0.2)
                took = time.monotonic() - started
                done_page = on_b.get(send_page)
            with engine.connect() as conn:
                rows = conn.execute(text(
                    "SELECT phone, message_sid FROM smstrack_recipients WHERE campaign_id = :c"), {"c": campaign_id}).all()
        finally:
            engine.dispose()
            for worker in workers:
                stop(worker)
            forget_queue(prefix)
    per_number = Counter(m["to"] for m in twilio.messages)
    print(
        f"\nrecipients {RECIPIENTS}, messages at Twilio before the kill {sent_before}, after {len(twilio.messages)},"
        f" create requests {len(twilio.creates)}, numbers texted twice {sum(1 for n in per_number.values() if n > 1)},"
        f" left unknown by the kill {unknown}, polls on B {len(seen)}, second worker done in {took:.1f} s"
        f" ({'full' if FULL else 'short'} form)"
    )
    assert seen and seen[-1]["status"] == "finished", (seen[-3:], log.read_text()[-2000:])
    # The second run's progress counts what was left to send, and ends full.
    assert seen[-1]["done"] == seen[-1]["total"] == RECIPIENTS - sent_before + unknown, seen[-1]
    assert len(per_number) == RECIPIENTS and set(per_number.values()) == {1}, per_number
    assert len(twilio.creates) == RECIPIENTS
    assert len(rows) == RECIPIENTS and all(sid for _, sid in rows)
    assert {sid for _, sid in rows} == {m["sid"] for m in twilio.messages}
    assert "1 found already sent at Twilio" in done_page, done_page[-1500:]
