"""The tables of opt-outs and their history.

Numbers are kept here only as a keyed hash (see
:func:`flask_smstrack.sms.suppression.phone_hash`) and their last two digits,
so a suppression outlives the erasure of everything else about a number.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, UTCDateTime, utcnow

#: The owner of suppressions that hold for every owner's campaigns (a STOP
#: from a number no campaign has texted, ``opt-out`` without ``--owner``).
EVERY_OWNER = ""


class Suppression(Base):
    """A number that must not be texted: never prepared, exported or sent
    by the owner's campaigns (by anyone's for :data:`EVERY_OWNER`)."""

    __tablename__ = "smstrack_suppressions"
    __table_args__ = (UniqueConstraint("owner_id", "phone_hash"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(255), default=EVERY_OWNER)
    #: HMAC-SHA256 (hex) of the number in E.164.
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    #: The number's last two digits, to tell entries apart on screen.
    phone_tail: Mapped[str | None] = mapped_column(String(2))
    #: ``reply`` (an SMS keyword), ``cli``, ``import``, ``api``, ``dashboard``,
    #: ``twilio`` (Twilio refused a message: the number had replied STOP to
    #: the sender, error 21610) or ``erasure``.
    source: Mapped[str] = mapped_column(String(16))
    #: The reply's keyword (``STOP``...), when it came from one.
    keyword: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class OptOutEvent(Base):
    """One opt-out, opt-in or help request, kept as the number's history
    and counted per campaign and variant in the reports."""

    __tablename__ = "smstrack_opt_out_events"
    __table_args__ = (
        UniqueConstraint("owner_id", "external_id"),
        Index("ix_smstrack_opt_out_events_owner_phone", "owner_id", "phone_hash"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(255), default=EVERY_OWNER)
    phone_hash: Mapped[str] = mapped_column(String(64))
    phone_tail: Mapped[str | None] = mapped_column(String(2))
    #: ``opt_out``, ``opt_in`` or ``help``.
    action: Mapped[str] = mapped_column(String(8))
    #: As :attr:`Suppression.source`.
    source: Mapped[str] = mapped_column(String(16))
    keyword: Mapped[str | None] = mapped_column(String(32))
    #: The campaign (and variant, recipient) whose message the reply answered:
    #: the number's latest message sent before it.
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("smstrack_campaigns.id", ondelete="SET NULL"), index=True
    )
    variant_id: Mapped[int | None] = mapped_column(Integer)
    recipient_id: Mapped[int | None] = mapped_column(BigId)
    #: The provider's id of the inbound message (Twilio's ``MessageSid``):
    #: a webhook delivered twice is stored once.
    external_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
