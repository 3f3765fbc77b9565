"""The tables of outbound webhooks: owners' endpoints (and Google Analytics 4
streams), the deliveries of events to them, and the scan's cursors."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, UTCDateTime, utcnow

#: The events an endpoint may subscribe to.
EVENTS = ("click", "conversion", "refund", "message.status", "opt_out")


class WebhookEndpoint(Base):
    """Where an owner's events go: a URL signed with a Standard Webhooks
    secret (``kind="webhook"``), or a Google Analytics 4 stream that gets
    the owner's conversions as ``purchase`` events (``kind="ga4"``)."""

    __tablename__ = "smstrack_webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(255), index=True)
    #: ``webhook`` or ``ga4``.
    kind: Mapped[str] = mapped_column(String(8), default="webhook")
    #: The receiver's URL (webhooks only).
    url: Mapped[str | None] = mapped_column(Text)
    #: ``whsec_`` and base64 for a webhook; the API secret of a GA4 stream.
    secret: Mapped[str] = mapped_column(String(128))
    #: The GA4 stream's measurement id (``G-XXXXXXX``).
    measurement_id: Mapped[str | None] = mapped_column(String(32))
    #: Subscribed events, a list of :data:`EVENTS`.
    events: Mapped[list] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Deliveries in a row that failed every retry; a success sets it to 0.
    failed_deliveries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: Attempts that failed, in all.
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event on its way to one endpoint: its body is fixed when it is
    made, so every attempt sends the same bytes under the same ``webhook-id``."""

    __tablename__ = "smstrack_webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_smstrack_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("smstrack_webhook_endpoints.id", ondelete="CASCADE"))
    #: The ``webhook-id``: the event's type and its row, e.g. ``conversion_42``.
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(20))
    #: The JSON body, as signed and sent.
    payload: Mapped[str] = mapped_column(Text)
    #: ``pending`` (waiting for its next attempt), ``sending`` (claimed by a
    #: worker), ``delivered`` or ``failed`` (no retry left).
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: When the running attempt was claimed: a claim older than the timeout
    #: is a dead worker's, and the delivery is due again.
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: The receiver's last HTTP status, ``None`` when none came.
    response_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookCursor(Base):
    """The last row of a table the event scan has read (``click``,
    ``conversion``, ``refund``, ``opt_out``)."""

    __tablename__ = "smstrack_webhook_cursors"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
