"""The app as the SMS end-to-end tests run it: gunicorn behind a proxy that
serves it as https://go.example.com, sending through a fake Twilio API, and
Twilio's webhooks posted to it signed with the real ``RequestValidator``."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from conftest import PASSWORD_HASH_METHOD
from e2e.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from e2e.support import Reply, clean_env, fetch

PUBLIC = "https://go.example.com"
#: What the proxy in front of gunicorn tells it about the public address.
PROXY = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "go.example.com", "X-Forwarded-For": "81.2.69.160"}


def twilio_env(database_url: str, tmp_path: Path, twilio: FakeTwilio, secret: str) -> dict[str, str]:
    """The environment of the app and its CLI: this database, the public
    address behind one proxy, and the fake Twilio API."""
    return clean_env(
        DATABASE_URL=database_url,
        SECRET_KEY=secret,
        SMSTRACK_BASE_URL=PUBLIC,
        SMSTRACK_PROXY_HOPS="1",
        SMSTRACK_SPOOL_DIR=str(tmp_path / "spool"),
        SMSTRACK_TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        SMSTRACK_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        SMSTRACK_TWILIO_FROM="+15005550006",
        SMSTRACK_TWILIO_API_URL=twilio.url,
        SMSTRACK_SEND_RATE="200",
        SMSTRACK_PASSWORD_HASH_METHOD=PASSWORD_HASH_METHOD,
    )


def post_signed(server_url: str, path: str, params: dict[str, str], *, token: str = AUTH_TOKEN,
                sender: str = "54.172.60.1") -> Reply:
    """A webhook as Twilio posts it: form fields, signed over the public
    URL it was given, from ``sender`` through the proxy."""
    signature = RequestValidator(token).compute_signature(PUBLIC + path, params)
    return fetch(
        server_url + path,
        method="POST",
        headers={**PROXY, "X-Forwarded-For": sender, "Content-Type": "application/x-www-form-urlencoded",
                 "X-Twilio-Signature": signature},
        body=urlencode(params).encode(),
    )
