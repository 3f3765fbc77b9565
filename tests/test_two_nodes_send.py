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

import json
import subprocess
import time
import uuid

from sqlalchemy import create_engine

from conftest import REDIS_URL, _empty_tables
from e2e.browser import BIN
from e2e.fake_twilio import FakeTwilio
from e2e.send_kill import PASSWORD, KillMidSend, left_unknown, seed_send, sids, texted_once, worker
from e2e.support import ROOT, free_port, gunicorn, poll, stop
from e2e.twilio_app import twilio_env
from test_jobs import forget_queue
from test_jobs_web_e2e import Browser
from test_worker_e2e import FULL

OWNER = "two-nodes-send@example.com"
RECIPIENTS = 30
KILL_AT = 9


def test_rq_worker_sends_for_two_nodes_and_survives_kill_9(migrated, tmp_path):
    _empty_tables(migrated)
    prefix = f"t-2send-{uuid.uuid4().hex[:8]}"
    workers: list[subprocess.Popen] = []
    with FakeTwilio() as twilio:
        env = twilio_env(migrated, tmp_path, twilio, "two-nodes-send-secret")
        env.update(SMSTRACK_REDIS_URL=REDIS_URL, SMSTRACK_REDIS_PREFIX=prefix, SMSTRACK_SEND_RATE="50",
                   SMSTRACK_JOB_INTERVAL="0")
        campaign_id = seed_send(env, OWNER, 3000, RECIPIENTS)
        kill = KillMidSend(twilio, workers, KILL_AT)
        twilio.on_create = kill
        log = tmp_path / "worker.log"
        engine = create_engine(migrated)
        try:
            with gunicorn(BIN / "gunicorn", "wsgi:app", port=free_port(), cwd=ROOT, env=env, log=tmp_path / "a.log",
                          workers=2, ready_path="/smstrack/login") as a, \
                 gunicorn(BIN / "gunicorn", "wsgi:app", port=free_port(), cwd=ROOT, env=env, log=tmp_path / "b.log",
                          workers=2, ready_path="/smstrack/login") as b:
                workers.append(worker(env, log))
                on_a = Browser(a.url)
                on_a.submit("/smstrack/login", "/smstrack/login", email=OWNER, password=PASSWORD)
                send_page = f"/smstrack/campaigns/{campaign_id}/send"
                sending = on_a.submit(send_page, send_page)
                assert "data-smstrack-job=" in sending, sending[:500]
                poll(lambda: kill.killed, bool, timeout=30)
                assert len(kill.killed) == 2, f"worker and work-horse: {kill.killed}\n{log.read_text()}"
                sent_before = len(twilio.messages)
                unknown = left_unknown(engine, campaign_id, move_claim_back=not FULL)
                assert unknown == 1

                # The owner's session from A follows the send on B.
                on_b = Browser(b.url)
                on_b.opener = on_a.opener  # the same cookies
                status_path = f"/smstrack/campaigns/{campaign_id}/jobs/send.json"
                started = time.monotonic()
                workers.append(worker(env, log))
                seen: list[dict] = []
                while time.monotonic() - started < (150 if FULL else 60):
                    seen.append(json.loads(on_b.get(status_path)))
                    if seen[-1]["status"] == "finished":
                        break
                    time.sleep(0.2)
                took = time.monotonic() - started
                done_page = on_b.get(send_page)
            rows = sids(engine, campaign_id)
        finally:
            engine.dispose()
            for process in workers:
                stop(process)
            forget_queue(prefix)
    counts = texted_once(twilio, rows, RECIPIENTS)
    print(f"\nrecipients {RECIPIENTS}, messages at Twilio before the kill {sent_before}; {counts};"
          f" left unknown by the kill {unknown}, polls on B {len(seen)}, second worker done in {took:.1f} s"
          f" ({'full' if FULL else 'short'} form)")
    assert seen and seen[-1]["status"] == "finished", (seen[-3:], log.read_text()[-2000:])
    # The second run's progress counts what was left to send (the killed
    # request's message included), and ends full.
    assert seen[-1]["done"] == seen[-1]["total"] == RECIPIENTS - KILL_AT + 1, seen[-1]
    assert "1 found already sent at the provider" in done_page, done_page[-1500:]
