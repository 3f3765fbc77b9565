"""Reading a campaign's counts: what is rolled up plus the live rows after
its cut. Reading never writes: a campaign without rollups is counted from
its rows, and :func:`~.rollups.catch_up` (a background job) moves the cut
forward; the numbers are the same either way.

One case needs care: a campaign whose send time changed since its rollups
were made. Its send-to-click delays were binned against the old send time;
the next catch-up rebuilds them (see :func:`~.rollup_edits.unroll`), and
until then they are read as that rebuild will make them: from the rows
(against the new send time), keeping only what a purge left in the rollups.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from sqlalchemy import select

from ..models import Campaign, ClickDimensionRollup, ClickRollup, ConversionRollup, RollupState
from ..state import get_state
from .rollup_queries import (
    CONVERSION_COUNTERS,
    _counts,
    aggregate_click_buckets,
    aggregate_click_dimension,
    aggregate_conversion_dimension,
)


def state_for(campaign_id: int) -> RollupState | None:
    """The campaign's rollup state as stored now (``None``: nothing rolled up)."""
    return get_state().db.session.get(RollupState, campaign_id, populate_existing=True)


class CampaignCounts:
    """A campaign's aggregates, rollup and live rows added together.

    ``refresh_after`` (tests, tools) first catches the campaign's rollups
    up when their cut is older than that; the default reads only.
    """

    def __init__(self, campaign: Campaign, *, refresh_after: dt.timedelta | None = None) -> None:
        self.campaign = campaign
        if refresh_after is not None:
            from .rollups import refresh_many

            refresh_many(Campaign.id == campaign.id, refresh_after=refresh_after)
        state = state_for(campaign.id)
        self.state = state
        self.cut = state.rolled_until if state is not None else None

    @property
    def resent(self) -> bool:
        """Whether the send time changed since the rollups were made."""
        return self.state is not None and self.state.sent_at != self.campaign.sent_at

    def click_buckets(self) -> list[tuple]:
        """``(bucket_start, kind, clicks, firsts, confirmed)``, ``bucket_start`` aware UTC."""
        totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
        session = get_state().db.session
        if self.cut is not None:
            for r in session.execute(
                select(ClickRollup.bucket, ClickRollup.kind, ClickRollup.clicks, ClickRollup.firsts, ClickRollup.confirmed)
                .where(ClickRollup.campaign_id == self.campaign.id)
            ):
                t = totals[(r[0], r[1])]
                t[0] += r[2]; t[1] += r[3]; t[2] += r[4]  # noqa: E702
        for b, k, n, f, h in aggregate_click_buckets(self.campaign.id, self.cut):
            t = totals[(b, k)]
            t[0] += n; t[1] += f; t[2] += h  # noqa: E702
        return [
            (dt.datetime.fromtimestamp(b, dt.timezone.utc), k, *v) for (b, k), v in sorted(totals.items())
        ]

    def click_dimension(self, dimension: str) -> list[tuple]:
        """``(value, kind, clicks, firsts)``; ``value`` a string, ``""`` for none."""
        if dimension == "send_delay" and self.resent:
            return self._send_delay_resent()
        totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        for value, k, n, f in self._rolled_dimension(dimension):
            t = totals[(value, k)]
            t[0] += n; t[1] += f  # noqa: E702
        for value, k, n, f in aggregate_click_dimension(self.campaign.id, dimension, self.campaign.sent_at, self.cut):
            t = totals[(value, k)]
            t[0] += n; t[1] += f  # noqa: E702
        return [(value, k, *v) for (value, k), v in totals.items()]

    def _rolled_dimension(self, dimension: str) -> list[tuple]:
        if self.cut is None:
            return []
        r = ClickDimensionRollup
        return [
            tuple(row)
            for row in get_state().db.session.execute(
                select(r.value, r.kind, r.clicks, r.firsts).where(r.campaign_id == self.campaign.id, r.dimension == dimension)
            )
        ]

    def _send_delay_resent(self) -> list[tuple]:
        """The delays as the catch-up after a new send time leaves them:
        from the rows against the new send time, plus, when a purge deleted
        older rows, what the rollups hold of those (against the old one)."""
        campaign, state = self.campaign, self.state
        purged = state.purged_until
        parts: list[tuple[int, list[tuple]]] = []
        if purged is not None:
            parts.append((1, self._rolled_dimension("send_delay")))
            parts.append((-1, aggregate_click_dimension(campaign.id, "send_delay", state.sent_at, purged, self.cut)))
        parts.append((1, aggregate_click_dimension(campaign.id, "send_delay", campaign.sent_at, purged)))
        totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        for sign, rows in parts:
            for value, k, n, f in rows:
                t = totals[(value, k)]
                t[0] += sign * n; t[1] += sign * f  # noqa: E702
        return [(value, k, *v) for (value, k), v in totals.items() if v[0]]

    def conversion_dimension(self, dimension: str) -> list[tuple]:
        """``(value, currency, *CONVERSION_COUNTERS)``; ``""`` for none (see
        ``aggregate_conversion_dimension``)."""
        rows = []
        if self.cut is not None:
            r = ConversionRollup.__table__.c
            rows = [
                (value, cur, *_counts(rest))
                for value, cur, *rest in get_state().db.session.execute(
                    select(r.value, r.currency, *(r[n] for n in CONVERSION_COUNTERS))
                    .where(r.campaign_id == self.campaign.id, r.dimension == dimension)
                )
            ]
        totals: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0), 0, Decimal(0), Decimal(0)])
        for value, cur, *counts in rows + aggregate_conversion_dimension(self.campaign.id, dimension, self.cut):
            t = totals[(value, cur)]
            for i, n in enumerate(counts):
                t[i] += n
        return [(value, cur, *v) for (value, cur), v in totals.items()]
