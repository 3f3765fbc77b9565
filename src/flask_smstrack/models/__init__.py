"""The tables of flask-smstrack.

The models live on their own declarative base and ``MetaData`` (every table
prefixed ``smstrack_``), so they work with any Flask-SQLAlchemy ``db`` the
host app hands to :class:`~flask_smstrack.SmsTrack`: queries go through the
host's ``db.session`` and engine, and the schema is managed by the
extension's own Alembic migrations (``flask smstrack init-db``).

Owners are stored as the string that Flask-Login's ``get_id()`` returns, so
campaigns can belong to the built-in users or to the host app's own users.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

from flask import current_app, has_app_context
from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from ..config import DEFAULTS, Keys
from .base import NAMING_CONVENTION, Base, BigId, Money, UTCDateTime, utcnow
from .destinations import LinkDestination
from .privacy import EVERY_OWNER, OptOutEvent, Suppression
from .rollups import ClickDimensionRollup, ClickRollup, ConversionRollup, PurgedConversion, RecipientRollup, RollupState
from .webhooks import WebhookCursor, WebhookDelivery, WebhookEndpoint

__all__ = [
    "EVERY_OWNER", "NAMING_CONVENTION", "NOT_SENT", "SENT_CONDITION", "ApiKey", "Base", "BigId", "Campaign", "Click",
    "ClickDimensionRollup", "ClickRollup", "Conversion", "ConversionRollup", "Link", "LinkDestination", "Money",
    "OptOutEvent", "PurgedConversion", "RECIPIENT_FIRST_CLICK", "Recipient", "RecipientRollup", "Refund", "RollupState",
    "Suppression", "UTCDateTime", "User", "Variant", "WebhookCursor", "WebhookDelivery", "WebhookEndpoint", "utcnow",
]

#: The owner of conversions that belong to nobody: posted by a browser
#: without a click, or by host code that names no owner.
NO_OWNER = ""


SESSION_ID_PREFIX = "smstrack:"  #: see :meth:`User.get_id`


class User(UserMixin, Base):
    """A built-in dashboard and API user of the standalone app."""

    __tablename__ = "smstrack_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Part of the session's user id: raised on logout and password change,
    #: so sessions issued before stop working.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def set_password(self, password: str) -> None:
        config = current_app.config if has_app_context() else {}
        method = config.get(Keys.PASSWORD_HASH_METHOD, DEFAULTS[Keys.PASSWORD_HASH_METHOD])
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def smstrack_admin(self) -> bool:
        return self.is_admin

    def get_id(self) -> str:
        """``smstrack:<id>:<session version>``, kept by Flask-Login: never a
        host user's id, and raising the version ends earlier sessions."""
        return f"{SESSION_ID_PREFIX}{self.id}:{self.session_version or 0}"


class ApiKey(Base):
    """An API key; only its SHA-256 is stored, the key is shown once."""

    __tablename__ = "smstrack_api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(255), index=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str | None] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()


class Campaign(Base):
    """One SMS send: what it cost, and the links in its message."""

    __tablename__ = "smstrack_campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    #: Where the campaign runs: one of :data:`~.channels.CHANNELS`. The SMS
    #: features (messages, recipients, sending) are for ``sms`` only.
    channel: Mapped[str] = mapped_column(String(8), default="sms", server_default="sms")
    #: Flat total cost of the send.
    cost: Mapped[Decimal | None] = mapped_column(Money)
    #: Price of one message; cost = cost_per_message x sent.
    cost_per_message: Mapped[Decimal | None] = mapped_column(Money)
    #: Price of one SMS segment; with recipients, cost = the sum of their
    #: messages' segments x this price.
    cost_per_segment: Mapped[Decimal | None] = mapped_column(Money)
    #: Messages sent, for campaigns whose recipients are not imported.
    sent: Mapped[int | None] = mapped_column(Integer)
    #: Messages delivered, once known.
    delivered: Mapped[int | None] = mapped_column(Integer)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    message_template: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    #: Profit, ROI, ROAS, EPC and AOV count verified revenue only.
    verified_revenue_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: When its recipients' numbers were replaced by their hash
    #: (``SMSTRACK_FORGET_PHONES_AFTER_DAYS``).
    phones_forgotten_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Where a disabled or expired link of the campaign sends visitors
    #: (before ``SMSTRACK_FALLBACK_URL`` and the "offer ended" page).
    fallback_url: Mapped[str | None] = mapped_column(Text)
    #: Who sends its messages (``twilio``, ``clicksend``); ``None``: ``SMSTRACK_SMS_PROVIDER``.
    provider: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    links: Mapped[list[Link]] = relationship(
        back_populates="campaign",
        order_by="Link.id",
        cascade="all, delete-orphan",
        primaryjoin="and_(Campaign.id == Link.campaign_id, Link.recipient_id.is_(None))",
    )
    variants: Mapped[list[Variant]] = relationship(
        back_populates="campaign", order_by="Variant.id", cascade="all, delete-orphan"
    )

    @property
    def total_cost(self) -> Decimal | None:
        """The cost of the send in the campaign's currency, if known."""
        if self.cost is not None or (self.cost_per_segment is None and self.cost_per_message is None):
            return self.cost
        return self.cost_for(*self.message_counts())

    def cost_for(self, messages: int, segments: int) -> Decimal | None:
        """The cost of the send given its imported recipients' messages that
        count as sent and their segments (see :meth:`message_counts`)."""
        if self.cost is not None:
            return self.cost
        if self.cost_per_segment is not None:
            return self.cost_per_segment * segments if messages else None
        if self.cost_per_message is None:
            return None
        sent = messages or self.sent
        return None if sent is None else self.cost_per_message * sent

    def recipient_count(self) -> int:
        """How many recipients are imported."""
        return self._count_recipients()

    def messages_sent(self) -> int:
        """Messages handed to a provider (not ``pending``, ``ready`` or ``suppressed``)."""
        return self._count_recipients(Recipient.__table__.c.status.not_in(NOT_SENT))

    def _count_recipients(self, *conditions) -> int:
        from sqlalchemy import func, select
        from sqlalchemy.orm import object_session

        session = object_session(self)
        if session is None or self.id is None:
            return 0
        r = Recipient.__table__.c
        return session.execute(select(func.count()).where(r.campaign_id == self.id, *conditions)).scalar_one()

    def message_counts(self) -> tuple[int, int]:
        """Messages that count as sent to imported recipients, and their
        segments (``(0, 0)`` without recipients)."""
        from sqlalchemy import func, select
        from sqlalchemy.orm import object_session

        session = object_session(self)
        if session is None or self.id is None:
            return 0, 0
        r = Recipient.__table__.c
        messages, segments = session.execute(
            select(func.count(), func.coalesce(func.sum(r.segments), 0)).where(
                r.campaign_id == self.id, *SENT_CONDITION
            )
        ).one()
        return int(messages), int(segments)


class Variant(Base):
    """One version of a campaign's message (A, B, ...) in an A/B/n test."""

    __tablename__ = "smstrack_variants"
    __table_args__ = (UniqueConstraint("campaign_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("smstrack_campaigns.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(40))
    message_template: Mapped[str] = mapped_column(Text)
    #: Relative share of the recipients (1 and 1: half each).
    weight: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    campaign: Mapped[Campaign] = relationship(back_populates="variants")


class Link(Base):
    """A short code and the destination it redirects to.

    A campaign link is shared by everyone who got the message; a
    per-recipient link (``recipient_id`` set) is one recipient's own code for
    a campaign link (``parent_id``), and its clicks count for that link.
    """

    __tablename__ = "smstrack_links"
    __table_args__ = (UniqueConstraint("parent_id", "recipient_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("smstrack_campaigns.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(64), unique=True)
    destination_url: Mapped[str] = mapped_column(Text)
    append_click_id: Mapped[bool] = mapped_column(Boolean, default=True)
    utm: Mapped[dict | None] = mapped_column(JSON)
    #: Set on per-recipient links.
    recipient_id: Mapped[int | None] = mapped_column(BigId, index=True)
    variant_id: Mapped[int | None] = mapped_column(Integer)
    #: The campaign link a per-recipient link stands for.
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("smstrack_links.id", ondelete="CASCADE")
    )
    #: A disabled link records no click and sends visitors to the fallback;
    #: a recipient's own link follows its campaign link's switch.
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: After this the link is ended as if disabled; ``None``: never.
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    campaign: Mapped[Campaign] = relationship(back_populates="links")
    #: A landing-page test's destinations, in order; empty without one.
    destinations: Mapped[list[LinkDestination]] = relationship(
        order_by=LinkDestination.number, cascade="all, delete-orphan", passive_deletes=True)


#: A recipient's first human click, as the redirect's lookup spells it: the
#: predicate of a partial index, which a query uses only when it repeats it.
RECIPIENT_FIRST_CLICK = "recipient_id IS NOT NULL AND kind = 'human' AND is_first"


class Click(Base):
    """One request to a tracked link."""

    __tablename__ = "smstrack_clicks"
    __table_args__ = (
        # Every index costs the redirect a write: a new visitor's click
        # touches the table, the click id and this one only.
        Index("ix_smstrack_clicks_campaign_time", "campaign_id", "created_at"),
        # Returning visitors only (partial index).
        Index(
            "ix_smstrack_clicks_visitor_link",
            "visitor_id",
            "link_id",
            sqlite_where=text("visitor_id IS NOT NULL"),
            postgresql_where=text("visitor_id IS NOT NULL"),
        ),
        # Clicks on per-recipient links only (partial index).
        Index(
            "ix_smstrack_clicks_recipient",
            "recipient_id",
            sqlite_where=text("recipient_id IS NOT NULL"),
            postgresql_where=text("recipient_id IS NOT NULL"),
        ),
        # Recipients' first human clicks, one row per recipient: how the
        # redirect places a click on a recipient's link (one index probe).
        Index(
            "ix_smstrack_clicks_recipient_first",
            "recipient_id",
            "id",
            sqlite_where=text(RECIPIENT_FIRST_CLICK),
            postgresql_where=text(RECIPIENT_FIRST_CLICK),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: Public, random, URL-safe id passed to the landing page.
    click_id: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    link_id: Mapped[int] = mapped_column(ForeignKey("smstrack_links.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("smstrack_campaigns.id", ondelete="CASCADE")
    )
    recipient_id: Mapped[int | None] = mapped_column(BigId)
    variant_id: Mapped[int | None] = mapped_column(Integer)
    #: ``human``, ``preview`` or ``bot``; ``forward`` for a human click on
    #: a recipient's own link from another device than the recipient's.
    kind: Mapped[str] = mapped_column(String(8))
    #: Why a ``bot`` click is one when it is not its user agent, e.g.
    #: ``flood`` (beyond the per-address click rate).
    bot_reason: Mapped[str | None] = mapped_column(String(16))
    #: Where the click was seen: ``None`` for the redirect, ``twilio`` for
    #: a click event of Twilio's link shortening.
    source: Mapped[str | None] = mapped_column(String(8))
    #: The visitor's (or recipient's) first human click in this campaign: a
    #: unique click.
    is_first: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The snippet reported the landing page loaded in a browser.
    human_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    #: For a returning visitor, the click id of the visitor's first click
    #: (carried by the cookie); ``None`` when this click is the first.
    visitor_id: Mapped[str | None] = mapped_column(String(32))

    @property
    def visitor(self) -> str:
        """The id of the visitor: the click id of their first click."""
        return self.visitor_id or self.click_id
    device_type: Mapped[str | None] = mapped_column(String(16))
    os: Mapped[str | None] = mapped_column(String(64))
    browser: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(2))
    #: IPv4 truncated to /24, IPv6 to /48.
    ip: Mapped[str | None] = mapped_column(String(45))
    referrer_host: Mapped[str | None] = mapped_column(String(255))
    #: The link destination the visitor was sent to (its ``number``);
    #: ``None``: the link's own destination.
    destination_no: Mapped[int | None] = mapped_column(SmallInteger)


class Conversion(Base):
    """A conversion reported by the snippet or by the server.

    Order ids are unique per owner and event: the owner is the campaign
    owner's id for an attributed conversion, else the API key's owner, or
    :data:`NO_OWNER`.
    """

    __tablename__ = "smstrack_conversions"
    __table_args__ = (
        UniqueConstraint("owner_id", "event", "order_id"),
        Index("ix_smstrack_conversions_campaign_time", "campaign_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    owner_id: Mapped[str] = mapped_column(String(255), default=NO_OWNER, server_default="")
    #: The click the conversion is attributed to; ``None`` when unattributed.
    click_pk: Mapped[int | None] = mapped_column(
        ForeignKey("smstrack_clicks.id", ondelete="SET NULL"), index=True
    )
    #: The click id as reported, kept even when it matched no click.
    reported_click_id: Mapped[str | None] = mapped_column(String(64))
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("smstrack_campaigns.id", ondelete="SET NULL")
    )
    link_id: Mapped[int | None] = mapped_column(Integer)
    recipient_id: Mapped[int | None] = mapped_column(BigId)
    variant_id: Mapped[int | None] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(64))
    revenue: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    order_id: Mapped[str | None] = mapped_column(String(128))
    #: ``snippet`` or ``server``.
    source: Mapped[str] = mapped_column(String(8))
    #: ``unverified`` (browsers) or ``verified`` (API keys, host code,
    #: conversion tokens); a verified record upgrades an unverified one.
    trust: Mapped[str] = mapped_column(String(10))
    #: The sum of its refunds, in its currency.
    refunded: Mapped[Decimal] = mapped_column(Money, default=Decimal(0), server_default="0")


class Refund(Base):
    """Money given back on a verified conversion, all or part of it."""

    __tablename__ = "smstrack_refunds"
    __table_args__ = (UniqueConstraint("conversion_id", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversion_id: Mapped[int] = mapped_column(
        ForeignKey("smstrack_conversions.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(String(200))
    #: The shop's or payment provider's id of the refund: a replay with the
    #: same id changes nothing.
    external_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Recipient(Base):
    """One person a campaign's message goes to, and what happened to it.

    ``status`` moves forward only: ``pending`` (imported), ``ready`` (message
    rendered, links made) or ``suppressed`` (the number opted out: not sent,
    back to ``pending`` if it opts in again), then ``exported`` (downloaded for another SMS
    platform), or ``sending`` (handed to the provider, answer not yet stored)
    and the provider's ``queued``, ``sent``, ``delivered``, ``undelivered`` or
    ``failed``.
    """

    __tablename__ = "smstrack_recipients"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone"),
        Index("ix_smstrack_recipients_campaign_status", "campaign_id", "status"),
        # A reply (STOP...) and a person's export or erasure find a number
        # in every campaign.
        Index("ix_smstrack_recipients_phone", "phone"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("smstrack_campaigns.id", ondelete="CASCADE"), index=True
    )
    #: E.164, e.g. ``+14155550100``; ``None`` once forgotten or erased.
    phone: Mapped[str | None] = mapped_column(String(16))
    #: The number's keyed hash, set when the number itself is forgotten
    #: (see :func:`flask_smstrack.sms.suppression.phone_hash`).
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    #: The number's last two digits, kept with the hash.
    phone_tail: Mapped[str | None] = mapped_column(String(2))
    #: IANA time zone of the recipient, from the import's ``timezone``
    #: column; ``None`` derives it from the number.
    timezone: Mapped[str | None] = mapped_column(String(64))
    #: Where and when the recipient agreed to receive messages (the import's
    #: ``consent_source`` and ``consent_at`` columns).
    consent_source: Mapped[str | None] = mapped_column(String(200))
    consent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    external_id: Mapped[str | None] = mapped_column(String(128))
    #: Columns of the imported file besides phone and external id
    #: (``first_name``, ``city``...), for the message's placeholders.
    attributes: Mapped[dict | None] = mapped_column(JSON)
    variant_id: Mapped[int | None] = mapped_column(Integer)
    #: ``pending``, then the delivery status reported for its message.
    status: Mapped[str] = mapped_column(String(16), default="pending")
    segments: Mapped[int | None] = mapped_column(Integer)
    #: The message's price as its provider or an imported report gave it.
    cost: Mapped[Decimal | None] = mapped_column(Money)
    #: The rendered message, with the recipient's own links.
    message: Mapped[str | None] = mapped_column(Text)
    #: The provider's id of the message (Twilio's MessageSid).
    message_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: The provider's error code for an undelivered or failed message.
    error_code: Mapped[str | None] = mapped_column(String(16))
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    status_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


#: Statuses of recipients whose message has not left: imported, rendered, or
#: held back because the number opted out.
NOT_SENT = ("pending", "ready", "suppressed")

#: A recipient's message counts as sent (and paid for) once it is handed to a
#: provider or exported for another platform, unless the provider refused it
#: before sending.
SENT_CONDITION = (
    Recipient.__table__.c.status.not_in(NOT_SENT),
    ~((Recipient.__table__.c.status == "failed") & Recipient.__table__.c.message_sid.is_(None)),
)

