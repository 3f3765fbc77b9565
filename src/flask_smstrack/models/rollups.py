"""The rollup tables: pre-aggregated counts that keep reports fast.

Each campaign's clicks and conversions older than its ``rolled_until`` are
summed up here; reports add the rows after it, read live. See
:mod:`flask_smstrack.reports.rollups`.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import BigId, Base, Money, UTCDateTime


class _PerCampaign:
    """The campaign a rollup row belongs to, first part of its key."""

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("smstrack_campaigns.id", ondelete="CASCADE"), primary_key=True
    )


class RollupState(_PerCampaign, Base):
    __tablename__ = "smstrack_rollup_state"

    #: Rows created before this time are in the rollups.
    rolled_until: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: The send time the delay bins were computed against.
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Raw clicks and conversions created before this time were deleted by
    #: ``flask smstrack purge``: the rollups are all that is left of them.
    purged_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Conversions that named one of the campaign's clicks too late, counted
    #: here when a purge deleted the conversion or the click they matched.
    unattributed: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class ClickRollup(_PerCampaign, Base):
    """Clicks per campaign, 15-minute bucket and kind (every timezone's
    hours start on a quarter hour). ``bucket`` is the bucket's start in Unix
    seconds."""

    __tablename__ = "smstrack_rollup_clicks"

    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    clicks: Mapped[int] = mapped_column(BigInteger, default=0)
    firsts: Mapped[int] = mapped_column(BigInteger, default=0)
    confirmed: Mapped[int] = mapped_column(BigInteger, default=0)


class ClickDimensionRollup(_PerCampaign, Base):
    """Clicks per campaign, dimension value and kind. ``value`` is ``""``
    for unknown; the ``send_delay`` dimension holds delay bins."""

    __tablename__ = "smstrack_rollup_click_dims"

    dimension: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    clicks: Mapped[int] = mapped_column(BigInteger, default=0)
    firsts: Mapped[int] = mapped_column(BigInteger, default=0)


class ConversionRollup(_PerCampaign, Base):
    """Conversions per campaign, dimension value and currency (``""`` for
    none). The ``bucket`` dimension holds 15-minute buckets (Unix seconds)
    and ``click_delay`` the delay bins."""

    __tablename__ = "smstrack_rollup_conversions"

    dimension: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    conversions: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue: Mapped[Decimal] = mapped_column(Money, default=0)
    #: The verified ones among them, and their revenue.
    verified: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    verified_revenue: Mapped[Decimal] = mapped_column(Money, default=0, server_default="0")
    #: Refunds of these conversions (verified ones only have refunds).
    refunded: Mapped[Decimal] = mapped_column(Money, default=0, server_default="0")


class RecipientRollup(_PerCampaign, Base):
    """What the audience of a campaign needs of a recipient's purged clicks
    and conversions: their first human click (its id, time, device and
    country) and whether they converted."""

    __tablename__ = "smstrack_rollup_recipients"

    recipient_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    #: The id the purged first human click had: the first of all is the one
    #: with the lowest id, purged or not.
    click_pk: Mapped[int | None] = mapped_column(BigId)
    clicked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    device_type: Mapped[str | None] = mapped_column(String(16))
    country: Mapped[str | None] = mapped_column(String(2))
    converted: Mapped[bool] = mapped_column(Boolean, default=False)


class PurgedConversion(Base):
    """What a purge keeps of a conversion that has an order id or can still
    be refunded: enough to answer a replay of its order id as a duplicate,
    and a refund with a clear refusal. No click, recipient or link."""

    __tablename__ = "smstrack_purged_conversions"
    __table_args__ = (UniqueConstraint("owner_id", "event", "order_id"),)

    #: The conversion's id.
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    owner_id: Mapped[str] = mapped_column(String(255))
    event: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(8))
    campaign_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("smstrack_campaigns.id", ondelete="SET NULL"), index=True
    )
    trust: Mapped[str] = mapped_column(String(10))
    revenue: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    refunded: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    #: When the conversion was recorded, and when it was purged.
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    purged_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
