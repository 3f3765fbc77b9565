"""A campaign sent through ClickSend from end to end: the CLI creates it
with ``--provider clicksend`` and sends through a fake ClickSend API on
127.0.0.1 (the real SDK), a lost connection mid-send is resumed without a
second message; gunicorn, behind a proxy, takes ClickSend's receipts and a
STOP reply on URLs that carry the webhook secret; the report counts the
delivered messages and ClickSend's prices."""
from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from urllib.parse import urlencode

from conftest import _empty_tables
from e2e.browser import BIN
from e2e.fake_clicksend import API_KEY, USERNAME, FakeClickSend
from e2e.seed import Seed
from e2e.support import ROOT, Cli, fetch, free_port, gunicorn, report
from e2e.twilio_app import PROXY, twilio_env

SECRET = "e2e-clicksend-webhook-secret"


def _post(server_url: str, path: str, fields: dict[str, str], secret: str = SECRET):
    """A webhook as ClickSend posts it: a form, to the URL set in its dashboard."""
    return fetch(
        f"{server_url}{path}?{urlencode({'secret': secret})}", method="POST",
        headers={**PROXY, "Content-Type": "application/x-www-form-urlencoded"}, body=urlencode(fields).encode(),
    )


def test_send_through_clicksend_resume_receipts_and_stop(migrated, tmp_path):
    _empty_tables(migrated)
    with FakeClickSend() as clicksend:
        env = twilio_env(migrated, tmp_path, clicksend, "cs-e2e-secret")
        env.update(
            SMSTRACK_CLICKSEND_USERNAME=USERNAME, SMSTRACK_CLICKSEND_API_KEY=API_KEY,
            SMSTRACK_CLICKSEND_API_URL=clicksend.url, SMSTRACK_CLICKSEND_WEBHOOK_SECRET=SECRET,
        )
        with Seed(env) as seed:
            key = seed.user_with_key("shop@example.com")
        cli = Cli(BIN / "flask", "wsgi", cwd=ROOT, env=env)
        out = cli("create-campaign", "--name", "Winter sale", "--currency", "USD", "--provider", "clicksend",
                  "--owner", "shop@example.com")
        campaign_id = re.match(r"Campaign (\d+) created", out).group(1)
        cli("create-link", campaign_id, "https://shop.example.com/winter")
        cli("add-variant", campaign_id, "A", "Hi {first_name}, 20% off today: {link} Reply STOP to opt out")
        people = tmp_path / "people.csv"
        people.write_text("phone,first_name\n" + "".join(f"+1415555{100 + i:04d},P{i}\n" for i in range(6)))
        cli("import-recipients", campaign_id, str(people))

        # The connection drops on the 4th message: the run stops there.
        clicksend.drop_after = 3
        command = [str(BIN / "flask"), "--app", "wsgi", "smstrack", "send", campaign_id, "--yes"]
        crashed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert crashed.returncode == 1
        assert "lost the connection to ClickSend" in crashed.stderr
        assert len(clicksend.messages) == 3
        # Run again: the rest go, the one in an unknown state is not sent blindly.
        clicksend.drop_after = None
        again = cli("send", campaign_id, "--yes")
        assert "Sent 2 messages" in again and "unknown state" in again
        sent_to = Counter(m["to"] for r in clicksend.sends for m in r.body["messages"])
        assert max(sent_to.values()) == 1 and len(sent_to) == 6
        ids = {m["to"]: m["message_id"] for m in clicksend.messages}
        assert len(ids) == 5

        port = free_port()
        with gunicorn(
            BIN / "gunicorn", "wsgi:app", port=port, cwd=ROOT, env=env, log=tmp_path / "gunicorn.log",
            workers=2, ready_path="/smstrack/login", timeout=120,
        ) as server:
            path = "/smstrack/webhooks/clicksend/receipts"
            phones = sorted(ids)
            for phone in phones[:4]:
                assert _post(server.url, path, {"message_id": ids[phone], "status_code": "201",
                                                "status_text": "Success: Message received on handset."}).status == 204
            failed = {"message_id": ids[phones[4]], "status_code": "301", "error_code": "8",
                      "error_text": "Unknown subscriber"}
            assert _post(server.url, path, failed, secret="guess").status == 401
            assert _post(server.url, path, failed).status == 204

            numbers = report(server.url, key, int(campaign_id))
            assert (numbers["delivered"], numbers["undelivered"]) == (4, 1)
            # ClickSend's price: one part at 0.077 for each of the 5 messages it has.
            assert numbers["cost"] == "0.385"

            inbound = "/smstrack/webhooks/clicksend/inbound"
            stop = {"from": phones[0], "body": "Stop", "message_id": "IN-1", "to": "+61411111111"}
            assert _post(server.url, inbound, stop, secret="").status == 401
            assert _post(server.url, inbound, stop).status == 204
            listed = fetch(f"{server.url}/smstrack/api/v1/opt-outs", headers={"Authorization": f"Bearer {key}"})
            opt_outs = json.loads(listed.body)["opt_outs"]
            assert [o["phone_tail"] for o in opt_outs] == [phones[0][-2:]]
