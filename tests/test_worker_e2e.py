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

import os
import re
import subprocess
import time
import uuid

from sqlalchemy import create_engine

from conftest import REDIS_URL, _empty_tables
from test_jobs import forget_queue
from e2e.browser import BIN
from e2e.fake_twilio import FakeTwilio
from e2e.send_kill import KillMidSend, left_unknown, seed_send, sids, texted_once, worker
from e2e.support import ROOT, Cli, poll, stop
from e2e.twilio_app import twilio_env

RECIPIENTS = 40
KILL_AT = 12
FULL = os.environ.get("FLASK_SMSTRACK_FAULTS") == "full"


def test_killed_worker_send_resumes_without_sending_twice(migrated, tmp_path):
    _empty_tables(migrated)
    prefix = f"t-jobs-{uuid.uuid4().hex[:8]}"
    workers: list[subprocess.Popen] = []
    with FakeTwilio() as twilio:
        env = twilio_env(migrated, tmp_path, twilio, "worker-e2e-secret")
        env.update(SMSTRACK_REDIS_URL=REDIS_URL, SMSTRACK_REDIS_PREFIX=prefix, SMSTRACK_SEND_RATE="100",
                   SMSTRACK_JOB_INTERVAL="0")
        campaign_id = seed_send(env, "shop@example.com", 1000, RECIPIENTS)
        kill = KillMidSend(twilio, workers, KILL_AT)
        twilio.on_create = kill
        log = tmp_path / "worker.log"
        cli = Cli(BIN / "flask", "wsgi", cwd=ROOT, env=env)
        try:
            workers.append(worker(env, log))
            out = cli("send", str(campaign_id), "--yes", "--no-wait")
            assert f"Send queued as job {prefix}-send-{campaign_id}" in out, out
            poll(lambda: kill.killed, bool, timeout=30)
            assert len(kill.killed) == 2, f"worker and work-horse: {kill.killed}\n{log.read_text()}"
            sent_before = len(twilio.messages)

            engine = create_engine(migrated)
            unknown = left_unknown(engine, campaign_id, move_claim_back=not FULL)
            assert unknown == 1

            started = time.monotonic()
            workers.append(worker(env, log))
            # The same command follows the job the second worker took over.
            out = cli("send", str(campaign_id), "--yes")
            took = time.monotonic() - started
            assert "1 found already sent at Twilio" in out, out

            rows = sids(engine, campaign_id)
            engine.dispose()
        finally:
            for process in workers:
                stop(process)
            forget_queue(prefix)
    counts = texted_once(twilio, rows, RECIPIENTS)
    print(f"\nrecipients {RECIPIENTS}, messages at Twilio before the kill {sent_before}; {counts};"
          f" left unknown by the kill {unknown}, second worker done in {took:.1f} s ({'full' if FULL else 'short'} form)")
    assert re.search(r"Sent \d+ messages", out)
