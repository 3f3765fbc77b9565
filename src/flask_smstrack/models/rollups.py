"""The rollup tables: pre-aggregated counts that keep reports fast.

Each campaign's clicks and conversions older than its ``rolled_until`` are
summed up here; reports add the rows after it, read live. See
:mod:`flask_smstrack.reports.rollups`.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Money, UTCDateTime


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
