"""Opt-outs from end to end: a recipient replies STOP, Twilio posts the
reply (signed with the real ``RequestValidator``) to gunicorn behind a proxy,
and the next sends through the CLI and a fake Twilio API leave that number
out, until START; a STOP that arrives while a send is under way stops the
message still to come."""
from __future__ import annotations

import re
import threading
from collections import Counter

from conftest import _empty_tables
from e2e.browser import BIN
from e2e.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from e2e.seed import Seed
from e2e.support import ROOT, Cli, free_port, gunicorn
from e2e.twilio_app import post_signed, twilio_env

INBOUND = "/smstrack/webhooks/twilio/inbound"
ANA, BEN, CY = "+14155550100", "+14155550101", "+14155550102"


def _reply(server_url: str, phone: str, body: str, sid: str, *, token: str = AUTH_TOKEN):
    """An incoming message as Twilio posts it to the number's webhook."""
    params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID, "From": phone, "To": "+15005550006",
              "Body": body, "NumMedia": "0", "FromCountry": "US"}
    return post_signed(server_url, INBOUND, params, token=token)


def test_stop_and_start_replies_change_the_next_sends(migrated, tmp_path):
    _empty_tables(migrated)
    with FakeTwilio() as twilio:
        env = twilio_env(migrated, tmp_path, twilio, "optout-e2e-secret")
        with Seed(env) as seed:
            seed.user_with_key("shop@example.com")
        cli = Cli(BIN / "flask", "wsgi", cwd=ROOT, env=env)
        people = tmp_path / "people.csv"
        people.write_text(f"phone,first_name\n{ANA},Ana\n{BEN},Ben\n{CY},Cy\n", encoding="utf-8")

        def campaign(name: str) -> str:
            out = cli("create-campaign", "--name", name, "--currency", "USD", "--owner", "shop@example.com",
                      "--message", "Hi {first_name}: {link} Reply STOP to opt out")
            campaign_id = re.match(r"Campaign (\d+) created", out).group(1)
            cli("create-link", campaign_id, "https://shop.example.com/spring")
            return campaign_id

        def sent(since: int) -> Counter:
            """Messages the fake Twilio received since the ``since``-th, by number."""
            return Counter(m["to"] for m in twilio.messages[since:])

        first = campaign("Spring sale")
        cli("import-recipients", first, str(people))
        assert "Sent 3 messages" in cli("send", first, "--yes")
        assert sent(0) == {ANA: 1, BEN: 1, CY: 1}

        port = free_port()
        with gunicorn(
            BIN / "gunicorn", "wsgi:app", port=port, cwd=ROOT, env=env, log=tmp_path / "gunicorn.log",
            workers=2, ready_path="/smstrack/login",
        ) as server:
            # Ben replies STOP; a forged copy and a chat message change nothing.
            forged = _reply(server.url, ANA, "STOP", "SM" + "f" * 32, token="not-the-token")
            assert forged.status == 403
            assert _reply(server.url, ANA, "Thanks, see you Saturday", "SM" + "0" * 32).status == 200
            stop = _reply(server.url, BEN, "Stop", "SM" + "1" * 32)
            assert stop.status == 200 and stop.headers["Content-Type"].startswith("text/xml")
            assert stop.body.decode().endswith("<Response/>")
            assert _reply(server.url, BEN, "Stop", "SM" + "1" * 32).status == 200  # Twilio retries

            second = campaign("Summer sale")
            assert "1 of them opted out and will not be texted." in cli("import-recipients", second, str(people))
            before = len(twilio.messages)
            out = cli("send", second, "--yes")
            assert "Sent 2 messages" in out
            assert sent(before) == {ANA: 1, CY: 1}

            # START lets Ben's message through again.
            assert _reply(server.url, BEN, "START", "SM" + "2" * 32).status == 200
            before = len(twilio.messages)
            assert "Sent 1 message " in cli("send", second, "--yes")
            assert sent(before) == {BEN: 1}

            # Cy replies STOP while the next send is under way, just as Ana's
            # message is handed to Twilio: the send leaves Cy out.
            third = campaign("Last call")
            cli("import-recipients", third, str(people))
            replied = threading.Event()

            def stop_cy(form: dict[str, str]) -> None:
                if form.get("To") == ANA and not replied.is_set():
                    assert _reply(server.url, CY, "STOP", "SM" + "3" * 32).status == 200
                    replied.set()

            twilio.on_create = stop_cy
            before = len(twilio.messages)
            out = cli("send", third, "--yes")
            twilio.on_create = None
            assert replied.is_set()
            assert "Sent 2 messages" in out
            assert "1 not sent: the number opted out during the send." in out
            assert sent(before) == {ANA: 1, BEN: 1}

        assert sent(0) == {ANA: 3, BEN: 3, CY: 2}
