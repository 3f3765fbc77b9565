"""Twilio settings and client: credentials from the config or the
environment, the webhook URLs it calls back, and an optional API base URL
(a proxy or a Twilio-compatible server)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from flask import current_app
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ..config import Keys
from .providers import SendError

#: Where Twilio posts delivery receipts and link-shortening click events,
#: under ``SMSTRACK_URL_PREFIX``.
STATUS_CALLBACK_PATH = "/webhooks/twilio/status"


CLICK_CALLBACK_PATH = "/webhooks/twilio/clicks"


#: Where Twilio posts the replies to the sending number (STOP, START...):
#: the number's "A message comes in" webhook.
INBOUND_PATH = "/webhooks/twilio/inbound"


#: Seconds to wait for one answer from Twilio.
TIMEOUT = 30


@dataclass(frozen=True)
class TwilioSettings:
    account_sid: str
    auth_token: str
    messaging_service_sid: str | None
    from_: str | None
    api_url: str | None
    status_callback: str

    @property
    def sender(self) -> str:
        """What the messages are sent from, as a person would name it."""
        if self.messaging_service_sid:
            return f"Messaging Service {self.messaging_service_sid}"
        return str(self.from_)


def twilio_auth_token() -> str | None:
    """The Auth Token: ``SMSTRACK_TWILIO_AUTH_TOKEN``, else ``$TWILIO_AUTH_TOKEN``."""
    return current_app.config[Keys.TWILIO_AUTH_TOKEN] or os.environ.get("TWILIO_AUTH_TOKEN") or None


def webhook_url(path: str) -> str | None:
    """The public URL of one of the webhooks, or ``None`` without
    ``SMSTRACK_BASE_URL``."""
    base = current_app.config[Keys.BASE_URL]
    if not base:
        return None
    return base.rstrip("/") + current_app.config[Keys.URL_PREFIX].rstrip("/") + path


def twilio_settings() -> TwilioSettings:
    """Twilio's settings from the config; :class:`SendError` lists what is missing."""
    c = current_app.config
    account_sid = c[Keys.TWILIO_ACCOUNT_SID] or os.environ.get("TWILIO_ACCOUNT_SID")
    auth_token = twilio_auth_token()
    service, sender = c[Keys.TWILIO_MESSAGING_SERVICE_SID], c[Keys.TWILIO_FROM]
    callback = webhook_url(STATUS_CALLBACK_PATH)
    problems = []
    if not account_sid:
        problems.append(f"set {Keys.TWILIO_ACCOUNT_SID} (or TWILIO_ACCOUNT_SID in the environment) to your Account SID")
    if not auth_token:
        problems.append(f"set {Keys.TWILIO_AUTH_TOKEN} (or TWILIO_AUTH_TOKEN in the environment) to your Auth Token")
    if not service and not sender:
        problems.append(
            f"set {Keys.TWILIO_MESSAGING_SERVICE_SID} (MG...) or {Keys.TWILIO_FROM} (a Twilio number) to send from"
        )
    if callback is None:
        problems.append(
            f"set {Keys.BASE_URL} to this app's public address (for example https://go.example.com):"
            " messages carry links to it, and Twilio posts delivery receipts to"
            f" {Keys.BASE_URL}{c[Keys.URL_PREFIX].rstrip('/')}{STATUS_CALLBACK_PATH}"
        )
    if problems:
        raise SendError("cannot send through Twilio: " + "; ".join(problems))
    return TwilioSettings(account_sid, auth_token, service or None, sender or None, c[Keys.TWILIO_API_URL], callback)


class ApiUrlHttpClient(TwilioHttpClient):
    """Twilio's HTTP client, sending the requests meant for
    ``https://api.twilio.com`` to ``api_url`` instead: a Twilio-compatible
    API, or a proxy in front of Twilio."""

    def __init__(self, api_url: str, **kwargs: Any) -> None:
        parts = urlsplit(api_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SendError(
                f"{Keys.TWILIO_API_URL} must be an http(s) URL such as https://twilio-proxy.example.com, not {api_url!r}"
            )
        super().__init__(**kwargs)
        self.api_url = parts

    def request(self, method: str, url: str, *args: Any, **kwargs: Any):
        parts = urlsplit(url)
        host = parts.hostname or ""
        # api.twilio.com, or api.<edge>.<region>.twilio.com with TWILIO_REGION.
        if host.startswith("api.") and (host == "api.twilio.com" or host.endswith(".twilio.com")):
            url = urlunsplit(
                (self.api_url.scheme, self.api_url.netloc, self.api_url.path.rstrip("/") + parts.path, parts.query, "")
            )
        return super().request(method, url, *args, **kwargs)


def twilio_client(settings: TwilioSettings) -> Client:
    """A Twilio REST client for ``settings``."""
    if settings.api_url:
        http_client: TwilioHttpClient = ApiUrlHttpClient(settings.api_url, timeout=TIMEOUT)
    else:
        http_client = TwilioHttpClient(timeout=TIMEOUT)
    return Client(settings.account_sid, settings.auth_token, http_client=http_client)


def error_info(err: Exception) -> tuple[int, int | None, str]:
    """``(HTTP status, Twilio error code, message)`` of a Twilio error."""
    status = int(getattr(err, "status", 0) or 0)
    code = getattr(err, "code", None)
    try:
        code = int(code) if code is not None else None
    except (TypeError, ValueError):
        code = None
    text = getattr(err, "detail", None) or getattr(err, "title", None) or getattr(err, "msg", None) or str(err)
    text = str(text).removeprefix("Unable to create record: ")
    return status, code, text


def surely_not_sent(err: requests.RequestException) -> bool:
    """Whether the request never reached the server (no connection made)."""
    if isinstance(err, requests.ConnectTimeout):
        return True
    if isinstance(err, requests.ConnectionError):
        from urllib3.exceptions import NewConnectionError

        reason = err.args[0] if err.args else None
        return isinstance(getattr(reason, "reason", reason), NewConnectionError)
    return False
