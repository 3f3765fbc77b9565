"""Twilio as a :class:`~.Provider`: the Messages API through the ``twilio``
client (settings and client in :mod:`..twilio`)."""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

import requests
from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from ...config import Keys
from ..receipts import segment_count
from ..twilio import TwilioSettings, error_info, surely_not_sent, twilio_client
from . import AccountRefused, Provider, RateLimited, Refused, Sent, Unknown, Unreachable

logger = logging.getLogger("flask_smstrack")

#: Twilio's error for a number that replied STOP to the sender.
UNSUBSCRIBED = 21610


#: Twilio errors about the account or the sender rather than one recipient:
#: the send stops, and the message stays ready for the next run.
ACCOUNT_ERRORS = frozenset({20003, 20005, 20404, 21212, 21603, 21606, 21659, 21701, 21702, 21703, 21704, 21705})


class TwilioProvider(Provider):
    name = "twilio"
    title = "Twilio"

    def __init__(self, settings: TwilioSettings, client: Client | None = None) -> None:
        self.settings = settings
        self._own_client = client is None
        self.client = client or twilio_client(settings)

    @property
    def sender(self) -> str:
        return self.settings.sender

    @property
    def setting_hint(self) -> str:
        return (
            f"Check {Keys.TWILIO_ACCOUNT_SID}, {Keys.TWILIO_AUTH_TOKEN} and the sender"
            f" ({Keys.TWILIO_MESSAGING_SERVICE_SID} or {Keys.TWILIO_FROM})."
        )

    def close(self) -> None:
        if self._own_client:
            session = getattr(self.client.http_client, "session", None)
            if session is not None:
                session.close()

    def _create_args(self, phone: str, body: str) -> dict[str, Any]:
        args: dict[str, Any] = {"to": phone, "body": body, "status_callback": self.settings.status_callback}
        if self.settings.messaging_service_sid:
            args["messaging_service_sid"] = self.settings.messaging_service_sid
        else:
            args["from_"] = self.settings.from_
        return args

    def send(self, phone: str, body: str, *, reference: str) -> Sent:
        try:
            message = self.client.messages.create(**self._create_args(phone, body))
        except requests.RequestException as err:
            if surely_not_sent(err):
                raise Unreachable(f"could not reach Twilio: {err}") from err
            raise Unknown(
                f"lost the connection to Twilio while sending to {phone} ({err}): that message may or"
                " may not have gone out. Run again to send the rest; --retry-unknown asks Twilio about it first."
            ) from err
        except TwilioException as err:
            status, code, text = error_info(err)
            if status == 429 or code == 20429:
                raise RateLimited(text, str(code)) from err
            if status in (401, 403, 404) or code in ACCOUNT_ERRORS:
                raise AccountRefused(
                    f"Twilio refused the request: {text} (error {code}). {self.setting_hint}", str(code)
                ) from err
            if status >= 500 or not status:
                raise Unknown(
                    f"Twilio answered {status or 'an error'} while sending to {phone} ({text}): that message"
                    " may or may not have gone out. Run again later; --retry-unknown asks Twilio about it first."
                ) from err
            raise Refused(
                text, str(code) if code is not None else None, unsubscribed=code == UNSUBSCRIBED
            ) from err
        except Exception as err:  # an answer that cannot be read: its fate is unknown
            logger.exception("Unreadable answer from Twilio for the message to %s", phone)
            raise Unknown(f"could not read Twilio's answer for the message to {phone}: {err}") from err
        return _sent(message)

    def candidates(self, phone: str, body: str | None, since: dt.datetime | None, reference: str) -> Iterable[Sent]:
        seen: set[str] = set()
        # Messages still queued have no send date yet: the second look-up,
        # without a date, finds them among the number's latest messages.
        lookups = ([{"date_sent_after": since}] if since is not None else []) + [{}]
        try:
            for extra in lookups:
                for message in self.client.messages.list(to=phone, limit=50, **extra):
                    if message.sid in seen:
                        continue
                    seen.add(message.sid)
                    if self._matches(message, body, since):
                        yield _sent(message)
        except (TwilioException, requests.RequestException) as err:
            raise Unknown(f"could not ask Twilio about the message to {phone}: {err}") from err

    def _matches(self, message, body: str | None, since: dt.datetime | None) -> bool:
        direction = str(getattr(message, "direction", "") or "")
        if direction and not direction.startswith("outbound"):
            return False
        created = getattr(message, "date_created", None)
        if since is not None and isinstance(created, dt.datetime) and created < since:
            return False
        service = getattr(message, "messaging_service_sid", None)
        if self.settings.messaging_service_sid and service and service != self.settings.messaging_service_sid:
            return False
        sender = getattr(message, "from_", None)
        if not self.settings.messaging_service_sid and sender and sender != self.settings.from_:
            return False
        text = getattr(message, "body", None)
        # Trial accounts prefix the body; a redacted body cannot be compared.
        return not (text and body and body.strip() not in text)


def _sent(message) -> Sent:
    error_code = getattr(message, "error_code", None)
    return Sent(
        message_id=message.sid,
        status=str(getattr(message, "status", None) or "queued"),
        segments=segment_count(getattr(message, "num_segments", None)),
        error_code=str(error_code) if error_code else None,
    )
