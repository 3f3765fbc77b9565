"""The dashboard's Send button on gunicorn with two processes and no Redis
(a small business on SQLite): the press starts the send on a thread of
the process that got it, and the progress its page polls
(``jobs/send.json``) moves and ends from whichever process answers. Every
recipient gets exactly one message, counted by number in the fake Twilio's
log."""
from __future__ import annotations

import http.cookiejar
import json
import re
import time
import urllib.parse
import urllib.request
from collections import Counter

from conftest import _empty_tables
from e2e.browser import BIN
from e2e.fake_twilio import FakeTwilio
from e2e.send_kill import PASSWORD, seed_send
from e2e.support import ROOT, free_port, gunicorn
from e2e.twilio_app import twilio_env

OWNER = "send-owner@example.com"
RECIPIENTS = 20
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


class Browser:
    """A logged-in user's cookies and form posts, over plain HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> str:
        with self.opener.open(self.url + path, timeout=10) as reply:
            return reply.read().decode()

    def submit(self, page: str, action: str, **fields: str) -> str:
        """Post the form of ``page`` (its CSRF token and ``fields``) to ``action``; the page it leads to."""
        token = _CSRF.search(self.get(page)).group(1)
        body = urllib.parse.urlencode({"csrf_token": token, **fields}).encode()
        with self.opener.open(self.url + action, data=body, timeout=10) as reply:
            return reply.read().decode()


def test_send_button_sends_once_and_shows_progress_without_redis(migrated, tmp_path):
    _empty_tables(migrated)
    with FakeTwilio() as twilio:
        env = twilio_env(migrated, tmp_path, twilio, "jobs-web-secret")
        # Slow enough to watch: about 4 s for the whole list.
        env.update(SMSTRACK_SEND_RATE="5", SMSTRACK_INSTANCE_PATH=str(tmp_path / "instance"))
        campaign_id = seed_send(env, OWNER, 2000, RECIPIENTS)
        with gunicorn(BIN / "gunicorn", "wsgi:app", port=free_port(), cwd=ROOT, env=env, log=tmp_path / "web.log",
                      workers=2, ready_path="/smstrack/login") as server:
            user = Browser(server.url)
            user.submit("/smstrack/login", "/smstrack/login", email=OWNER, password=PASSWORD)
            send_page = f"/smstrack/campaigns/{campaign_id}/send"
            assert f"Send {RECIPIENTS} messages</button>" in user.get(send_page)
            sending = user.submit(send_page, send_page)
            assert "Sending…" in sending and "data-smstrack-job=" in sending
            # Pressed again from another tab while it runs: still one send.
            user.submit(f"/smstrack/campaigns/{campaign_id}", send_page)
            started = time.monotonic()
            seen: list[dict] = []
            while time.monotonic() - started < 60:
                seen.append(json.loads(user.get(f"/smstrack/campaigns/{campaign_id}/jobs/send.json")))
                if not seen[-1]["active"]:
                    break
                time.sleep(0.1)
            took = time.monotonic() - started
            done_page = user.get(send_page)
    per_number = Counter(m["to"] for m in twilio.messages)
    progress = sorted({s["done"] for s in seen if s["done"] is not None})
    print(f"\nrecipients {RECIPIENTS}, messages at Twilio {len(twilio.messages)}, numbers texted twice"
          f" {sum(1 for n in per_number.values() if n > 1)}, polls {len(seen)}, progress values {progress},"
          f" done in {took:.1f} s")
    assert seen[-1]["status"] == "finished" and seen[-1]["done"] == seen[-1]["total"] == RECIPIENTS, seen[-1]
    assert all(s["status"] == "started" for s in seen[:-1]), [s["status"] for s in seen]
    assert len([v for v in progress if 0 < v < RECIPIENTS]) >= 3, progress  # it moved while it sent
    assert f"Sent {RECIPIENTS} messages ({RECIPIENTS} segments); 0 failed." in done_page
    assert len(per_number) == RECIPIENTS and set(per_number.values()) == {1}
