"""SMS providers: who sends a campaign's messages.

:mod:`..sending` claims, paces and stores; a :class:`Provider` only talks
to its service: it sends one message and says what happened, finds a
message it may have sent already (for ``retry_unknown``), and names its
delivery statuses in ours (those of :data:`..receipts.STATUS_RANK`).

Each failure is one of the exceptions below, and :mod:`..sending` acts on
its kind: :class:`Refused` fails that message and the send goes on;
:class:`RateLimited` waits and tries again; :class:`AccountRefused` and
:class:`Unreachable` give the message back and stop; :class:`Unknown`
stops and leaves the message in an unknown state.

A campaign's provider is its ``provider`` column, else
``SMSTRACK_SMS_PROVIDER``.
"""
from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from flask import current_app

from ...config import SMS_PROVIDERS as PROVIDERS
from ...config import Keys


class SendError(RuntimeError):
    """The campaign cannot be sent as configured; the message says how to fix it."""


@dataclass(frozen=True)
class Sent:
    """One message the provider has: as it answered a send, or as it lists it."""

    message_id: str
    #: One of our statuses (``queued``, ``accepted``, ``sent``...).
    status: str = "queued"
    segments: int | None = None
    #: The provider's price of the message, in ``currency``, when it says.
    cost: Decimal | None = None
    currency: str | None = None
    error_code: str | None = None


class ProviderError(Exception):
    """A send that did not go as planned; ``text`` says why."""

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


class Refused(ProviderError):
    """The provider refused this one message (an invalid number...).

    ``unsubscribed``: the number opted out at the provider."""

    def __init__(self, text: str, code: str | None = None, *, unsubscribed: bool = False) -> None:
        super().__init__(text, code)
        self.unsubscribed = unsubscribed


class RateLimited(ProviderError):
    """Too many requests: wait, then try the same message again."""


class AccountRefused(ProviderError):
    """The account or the sender was refused: nothing can be sent as configured."""


class Unreachable(ProviderError):
    """The request surely never reached the provider."""


class Unknown(ProviderError):
    """The request may or may not have sent the message."""


class Provider(ABC):
    """One SMS service, as :mod:`..sending` uses it."""

    #: Its name in :data:`PROVIDERS`, also the ``source`` of the opt-outs it reports.
    name: str
    #: Its name as a person would write it.
    title: str

    @property
    @abstractmethod
    def sender(self) -> str:
        """What the messages are sent from, as a person would name it."""

    @abstractmethod
    def send(self, phone: str, body: str, *, reference: str) -> Sent:
        """Send one message; ``reference`` is ours for it (the recipient id),
        kept by providers that can keep one. Raises a :class:`ProviderError`."""

    @abstractmethod
    def candidates(self, phone: str, body: str | None, since: dt.datetime | None, reference: str) -> Iterable[Sent]:
        """Messages this account sent to ``phone`` since ``since`` that may be
        the one with ``reference`` (a claim whose answer was lost), newest first."""

    def close(self) -> None:
        """Let go of connections."""

    @property
    def setting_hint(self) -> str:
        """The config keys to check when the account is refused."""
        return ""


def campaign_provider(campaign) -> str:
    """The provider of ``campaign``: its own, else ``SMSTRACK_SMS_PROVIDER``."""
    name = getattr(campaign, "provider", None) or current_app.config[Keys.SMS_PROVIDER] or "twilio"
    name = str(name).strip().lower()
    if name not in PROVIDERS:
        raise SendError(f"{Keys.SMS_PROVIDER} must be one of {', '.join(PROVIDERS)}, not {name!r}")
    return name


def make_provider(name: str, *, client=None) -> Provider:
    """The provider called ``name``, with its settings from the config;
    :class:`SendError` says what is missing. ``client`` is the service's
    own client, made from the settings when ``None``."""
    if name == "clicksend":
        from .clicksend import ClickSendProvider, clicksend_settings

        return ClickSendProvider(clicksend_settings(), client=client)
    from ..twilio import twilio_settings
    from .twilio import TwilioProvider

    return TwilioProvider(twilio_settings(), client=client)


def sender_of(campaign) -> str:
    """What ``campaign`` would be sent from; :class:`SendError` when it cannot be sent."""
    return provider_settings(campaign_provider(campaign)).sender


def provider_settings(name: str):
    """The settings of the provider called ``name`` (checked)."""
    if name == "clicksend":
        from .clicksend import clicksend_settings

        return clicksend_settings()
    from ..twilio import twilio_settings

    return twilio_settings()

