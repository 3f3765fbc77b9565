"""An SMS campaign from end to end, as a small business runs it: the CLI
imports the list, writes two variants and sends through Twilio (a fake
Twilio API on 127.0.0.1); gunicorn, behind a proxy that serves it as
https://go.example.com, takes the recipients' taps and Twilio's signed
delivery receipts; the report counts people, forwards and delivered
messages."""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from conftest import ANDROID, DESKTOP, IPHONE, _empty_tables
from e2e.browser import BIN
from e2e.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from e2e.seed import Seed
from e2e.support import ROOT, Cli, fetch, free_port, gunicorn, report
from e2e.twilio_app import PROXY, PUBLIC, post_signed, twilio_env


def _tap(server_url: str, short_url: str, ua: str, ip: str = "81.2.69.160", cookie: str | None = None):
    path = urlsplit(short_url).path
    headers = {**PROXY, "X-Forwarded-For": ip, "User-Agent": ua}
    if cookie:
        headers["Cookie"] = cookie
    return fetch(server_url + path, headers=headers)


def _receipt(server_url: str, sid: str, status: str, *, token: str = AUTH_TOKEN, **extra: str):
    """A status callback as Twilio posts it."""
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT_SID, **extra}
    return post_signed(server_url, "/smstrack/webhooks/twilio/status", params, token=token)


def test_import_send_tap_and_receipts(migrated, tmp_path):
    _empty_tables(migrated)
    with FakeTwilio() as twilio:
        env = twilio_env(migrated, tmp_path, twilio, "sms-e2e-secret")
        # The shop's owner and the API key the report is read with.
        with Seed(env) as seed:
            key = seed.user_with_key("shop@example.com")
        cli = Cli(BIN / "flask", "wsgi", cwd=ROOT, env=env)
        out = cli("create-campaign", "--name", "Spring sale", "--currency", "USD", "--cost-per-segment", "0.0079",
                  "--owner", "shop@example.com")
        campaign_id = re.match(r"Campaign (\d+) created", out).group(1)
        cli("create-link", campaign_id, "https://shop.example.com/spring")
        cli("add-variant", campaign_id, "A", "Hi {first_name}, 20% off today: {link}")
        cli("add-variant", campaign_id, "B", "{first_name}, the spring sale ends tonight: {link}")
        people = tmp_path / "people.csv"
        people.write_text(
            "phone,first_name\n" + "".join(f"(415) 555-{100 + i:04d},P{i}\n" for i in range(10)) + "oops,Nobody\n",
            encoding="utf-8",
        )
        assert "Imported 10 recipients; 0 duplicates merged; 1 rows left out." in cli(
            "import-recipients", campaign_id, str(people)
        )
        sent = cli("send", campaign_id, "--yes")
        assert "Sent 10 messages (10 segments)" in sent
        assert len(twilio.messages) == 10
        # A second run sends nothing.
        cli("send", campaign_id, "--yes")
        assert len(twilio.creates) == 10
        bodies = {m["to"]: m["body"] for m in twilio.messages}
        assert len({b.rsplit(" ", 1)[1] for b in bodies.values()}) == 10  # one link each
        assert all(b.rsplit(" ", 1)[1].startswith(f"{PUBLIC}/s/") for b in bodies.values())
        sids = {m["to"]: m["sid"] for m in twilio.messages}

        port = free_port()
        with gunicorn(
            BIN / "gunicorn", "wsgi:app", port=port, cwd=ROOT, env=env, log=tmp_path / "gunicorn.log",
            workers=2, ready_path="/smstrack/login",
        ) as server:
            link = {phone: body.rsplit(" ", 1)[1] for phone, body in bodies.items()}
            # Three people tap; one of them again from the same phone, and
            # one forwards the message to a friend with a laptop.
            first = _tap(server.url, link["+14155550100"], IPHONE)
            assert first.status == 302
            assert first.headers["Location"].startswith("https://shop.example.com/spring?smsclid=")
            cookie = first.headers["Set-Cookie"].split(";", 1)[0]
            assert _tap(server.url, link["+14155550100"], IPHONE, cookie=cookie).status == 302
            assert _tap(server.url, link["+14155550100"], DESKTOP, ip="90.12.1.1").status == 302
            assert _tap(server.url, link["+14155550101"], ANDROID, ip="81.2.69.161").status == 302
            assert _tap(server.url, link["+14155550102"], IPHONE, ip="81.2.69.162").status == 302

            # Receipts: 8 delivered, 1 undelivered, 1 never reported; a late
            # "sent" after "delivered" changes nothing; a tampered one is refused.
            phones = sorted(sids)
            for phone in phones[:8]:
                assert _receipt(server.url, sids[phone], "delivered").status == 204
            assert _receipt(server.url, sids[phones[8]], "undelivered", ErrorCode="30003").status == 204
            assert _receipt(server.url, sids[phones[0]], "sent").status == 204
            forged = _receipt(server.url, sids[phones[9]], "delivered", token="not-the-token")
            assert forged.status == 403

            numbers = report(server.url, key, int(campaign_id))
            assert (numbers["sent"], numbers["delivered"], numbers["undelivered"]) == (10, 8, 1)
            assert (numbers["clicks"], numbers["unique_clicks"], numbers["forwards"]) == (4, 3, 1)
            # 3 people of the 9 messages that may have arrived.
            assert numbers["ctr"] == round(3 / 9, 6)
            assert numbers["segments"] == 10 and numbers["cost"] == "0.079"
            reply = fetch(
                f"{server.url}/smstrack/api/v1/campaigns/{campaign_id}/recipients?segment=not_clicked",
                headers={"Authorization": f"Bearer {key}"},
            )
            not_clicked = [r["phone"] for r in json.loads(reply.body)["recipients"]]
            assert sorted(not_clicked) == phones[3:]
