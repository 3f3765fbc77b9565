"""ClickSend as a :class:`~.Provider`, through its SDK (``clicksend-client``,
module ``clicksend``): ``POST /v3/sms/send`` one message at a time, with
the recipient's id as the message's ``custom_string``, and
``GET /v3/sms/history`` to find a message whose answer was lost.

ClickSend's delivery receipts carry a gateway ``status_code``: 200 while
the message is on its way (queued, scheduled, sent to the network), 201
once it reached the handset, 300 for a temporary failure it will retry,
301 for a final one (failed, cancelled, expired).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import urllib3
from flask import current_app

from ...config import Keys
from . import AccountRefused, Provider, RateLimited, Refused, SendError, Sent, Unknown, Unreachable

if TYPE_CHECKING:
    import clicksend

logger = logging.getLogger("flask_smstrack")

#: Seconds to wait for one answer from ClickSend (connect, read).
TIMEOUT = (10.0, 30.0)

#: ``status`` of one message in the send answer that is about the account
#: or the sender rather than the recipient: the send stops.
ACCOUNT_STATUSES = frozenset({"INSUFFICIENT_CREDIT", "INVALID_SENDER_ID", "ACCOUNT_NOT_ACTIVATED", "FORBIDDEN"})

#: A receipt's gateway ``status_code``, as our status (300, a temporary
#: failure ClickSend retries, changes nothing).
RECEIPT_CODES = {"200": "sent", "201": "delivered", "301": "undelivered"}

#: A message's ``status`` word in ClickSend's history and receipts, as ours.
STATUS_WORDS = {
    "queued": "queued", "scheduled": "scheduled", "waitapproval": "queued", "sent": "sent",
    "completed": "delivered", "delivered": "delivered", "failed": "undelivered", "undelivered": "undelivered",
    "cancelled": "canceled", "cancelledafterreview": "canceled", "expired": "undelivered",
}


@dataclass(frozen=True)
class ClickSendSettings:
    username: str
    api_key: str
    from_: str | None
    api_url: str

    @property
    def sender(self) -> str:
        return f"ClickSend sender {self.from_}" if self.from_ else "ClickSend's default sender"


def clicksend_settings() -> ClickSendSettings:
    """ClickSend's settings from the config; :class:`SendError` lists what is missing."""
    c = current_app.config
    problems = []
    if not c[Keys.CLICKSEND_USERNAME]:
        problems.append(f"set {Keys.CLICKSEND_USERNAME} to the API username of your ClickSend account")
    if not c[Keys.CLICKSEND_API_KEY]:
        problems.append(f"set {Keys.CLICKSEND_API_KEY} to its API key (ClickSend Dashboard, API Credentials)")
    url = str(c[Keys.CLICKSEND_API_URL] or "")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append(f"{Keys.CLICKSEND_API_URL} must be an http(s) URL such as https://rest.clicksend.com, not {url!r}")
    if not c[Keys.BASE_URL]:
        problems.append(f"set {Keys.BASE_URL} to this app's public address: messages carry links to it")
    if problems:
        raise SendError("cannot send through ClickSend: " + "; ".join(problems))
    return ClickSendSettings(
        c[Keys.CLICKSEND_USERNAME], c[Keys.CLICKSEND_API_KEY], c[Keys.CLICKSEND_FROM] or None, url.rstrip("/")
    )


def _sdk():
    """ClickSend's SDK, or :class:`SendError` saying how to install it."""
    try:
        import clicksend
    except ImportError:
        raise SendError(
            "cannot send through ClickSend: its SDK is not installed: pip install 'flask-smstrack[clicksend]'"
        ) from None
    return clicksend


def clicksend_client(settings: ClickSendSettings) -> clicksend.ApiClient:
    """A ClickSend API client for ``settings``. Requests are never retried
    by the client: a send whose answer was lost is settled by
    ``retry_unknown``, never sent again blindly."""
    clicksend = _sdk()
    configuration = clicksend.Configuration(
        host=settings.api_url, username=settings.username, password=settings.api_key
    )
    configuration.retries = urllib3.Retry(total=0, read=False, redirect=False)
    return clicksend.ApiClient(configuration)


def receipt_status(status_code: str | None, status: str | None = None) -> str | None:
    """Our status for a ClickSend receipt, or ``None`` for one that changes nothing."""
    word = STATUS_WORDS.get((status or "").strip().lower().replace(" ", ""))
    code = (status_code or "").strip()
    if code == "301" and word == "canceled":
        return word
    return RECEIPT_CODES.get(code) or (word if not code else None)


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() and number >= 0 else None


def _error_text(err) -> str:
    try:
        body = json.loads(err.body or "")
        return str(body.get("response_msg") or body.get("response_code") or err.reason)
    except (ValueError, AttributeError):
        return str(err.reason or err)


def _surely_not_sent(err: Exception) -> bool:
    reason = getattr(err, "reason", None)
    return isinstance(err, urllib3.exceptions.MaxRetryError) and isinstance(
        reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)
    )


class ClickSendProvider(Provider):
    name = "clicksend"
    title = "ClickSend"

    def __init__(self, settings: ClickSendSettings, client: clicksend.ApiClient | None = None) -> None:
        self.settings = settings
        self._own_client = client is None
        self.sdk = _sdk()
        self.client = client or clicksend_client(settings)
        self.api = self.sdk.SmsApi(self.client)

    @property
    def sender(self) -> str:
        return self.settings.sender

    @property
    def setting_hint(self) -> str:
        return f"Check {Keys.CLICKSEND_USERNAME}, {Keys.CLICKSEND_API_KEY} and {Keys.CLICKSEND_FROM}."

    def close(self) -> None:
        if self._own_client:
            self.client.rest_client.pool_manager.clear()

    def send(self, phone: str, body: str, *, reference: str) -> Sent:
        clicksend = self.sdk
        message = clicksend.SendSmsRequestMessagesInner(
            body=body, to=phone, var_from=self.settings.from_, source="flask-smstrack", custom_string=reference
        )
        try:
            answer = self.api.send_sms(
                send_sms_request=clicksend.SendSmsRequest(messages=[message]), _request_timeout=TIMEOUT
            )
        except clicksend.ApiException as err:
            status, text = int(err.status or 0), _error_text(err)
            if status == 429:
                raise RateLimited(text, "429") from err
            if status in (401, 403):
                raise AccountRefused(f"ClickSend refused the request: {text}. {self.setting_hint}", str(status)) from err
            if status == 0 or status >= 500:
                raise Unknown(
                    f"ClickSend answered {status or 'an error'} while sending to {phone} ({text}): that message may"
                    " or may not have gone out. Run again later; --retry-unknown asks ClickSend about it first."
                ) from err
            raise Refused(text, str(status)) from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            if _surely_not_sent(err):
                raise Unreachable(f"could not reach ClickSend: {err}") from err
            raise Unknown(
                f"lost the connection to ClickSend while sending to {phone} ({err}): that message may or may"
                " not have gone out. Run again to send the rest; --retry-unknown asks ClickSend about it first."
            ) from err
        except Exception as err:  # an answer that cannot be read: its fate is unknown
            logger.exception("Unreadable answer from ClickSend for the message to %s", phone)
            raise Unknown(f"could not read ClickSend's answer for the message to {phone}: {err}") from err
        data = answer.data
        sent = (data.messages or [None])[0] if data is not None else None
        if sent is None:
            raise Unknown(f"ClickSend's answer for the message to {phone} names no message: {answer.response_msg}")
        status = (sent.status or "").upper()
        if status in ACCOUNT_STATUSES:
            raise AccountRefused(f"ClickSend refused the message: {status}. {self.setting_hint}", status)
        if status != "SUCCESS" or not sent.message_id:
            raise Refused(f"ClickSend refused the message: {status or 'no status'}", status or None)
        currency = data.currency.currency_name_short if data.currency is not None else None
        return Sent(
            message_id=sent.message_id,
            status="queued",
            segments=sent.message_parts if sent.message_parts and sent.message_parts > 0 else None,
            cost=_decimal(sent.message_price),
            currency=currency or None,
        )

    def candidates(self, phone: str, body: str | None, since: dt.datetime | None, reference: str) -> Iterable[Sent]:
        clicksend = self.sdk
        now = dt.datetime.now(dt.timezone.utc)
        start = since or now - dt.timedelta(days=1)
        try:
            answer = self.api.view_sms_history(
                q=f"to:{phone}", order_by="date:desc", limit=100,
                date_from=int(start.timestamp()), date_to=int(now.timestamp()) + 300, _request_timeout=TIMEOUT,
            )
        except (clicksend.ApiException, urllib3.exceptions.HTTPError, OSError) as err:
            raise Unknown(f"could not ask ClickSend about the message to {phone}: {err}") from err
        for message in (answer.data.data or []) if answer.data is not None else []:
            if (message.direction or "out") != "out" or message.to != phone or not message.message_id:
                continue
            if message.custom_string is not None:
                if message.custom_string != reference:
                    continue
            elif body and message.body and body.strip() not in message.body:
                continue
            yield Sent(
                message_id=message.message_id,
                status=STATUS_WORDS.get((message.status or "").lower(), "queued"),
                segments=message.message_parts or None,
                cost=_decimal(message.message_price),
            )
