"""The weighted destinations of a link: a landing-page test.

A campaign link with destinations sends each visitor to one of them, chosen
by weight and kept for that visitor (:mod:`flask_smstrack.tracking.destinations`);
the click records the destination's ``number``. The link's own
``destination_url`` stays its default: where it leads once the test is
removed.
"""
from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

#: How many destinations a link may have (when it has any).
MIN_DESTINATIONS, MAX_DESTINATIONS = 2, 10
#: The range of a destination's weight.
MIN_WEIGHT, MAX_WEIGHT = 1, 1000


class LinkDestination(Base):
    """One destination of a link's landing-page test."""

    __tablename__ = "smstrack_link_destinations"
    __table_args__ = (UniqueConstraint("link_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("smstrack_links.id", ondelete="CASCADE"))
    #: 1, 2, ... in the order given; what a click stores as ``destination_no``.
    number: Mapped[int] = mapped_column(SmallInteger)
    label: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    #: Its share of visitors is its weight over the sum of the link's weights.
    weight: Mapped[int] = mapped_column(Integer)
