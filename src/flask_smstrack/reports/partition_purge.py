"""Retention on PostgreSQL's partitioned clicks: a month of clicks entirely
before the purge's cut goes at once, its partition dropped, instead of row
by row (:mod:`.retention` deletes the rows of the month the cut falls in,
and of any month this leaves).

A partition is dropped only when the purge would have deleted every one of
its rows:

- its month ends before the click cut of every campaign with clicks in it
  (never after a campaign's rollup cut, nor within the attribution window);
- no conversion left (one from the cut on) is attributed to one of its
  clicks: such a click is kept, so the month goes row by row.

Before the drop, in the same transaction and under the rollup lock of the
campaigns, what the reports need of these clicks and the rollups do not
hold is kept, as for deleted rows: recipients' first clicks and the
conversions that named a click too late. A partition the clicks hold a
lock on for more than a few seconds is left for the next purge.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy import and_, func, select, text

from ..db.partitions import MONTHLY, drop_partition, is_partitioned, list_partitions
from ..models import Click
from .rollup_edits import lock_campaigns

logger = logging.getLogger("flask_smstrack")

_c = Click.__table__.c


def drop_old_partitions(
    session, cuts: dict[int, tuple[dt.datetime, dt.datetime]], keep: Callable
) -> dict[int, int]:
    """Drop the monthly partitions whose clicks the purge would all delete;
    ``cuts`` holds each campaign's ``(until, clicks_until)``, ``keep`` is
    called as ``keep(session, campaign_id, condition)`` before the drop.
    Returns the clicks dropped per campaign (nothing on SQLite)."""
    if not cuts or not is_partitioned(session.connection()):
        return {}
    latest = max(clicks_until for _, clicks_until in cuts.values())
    dropped: dict[int, int] = {}
    for partition in list_partitions(session.connection()):
        if partition.is_default or partition.end > latest or not MONTHLY.match(partition.name):
            continue
        try:
            gone = _drop(session, partition, cuts, keep)
        except Exception:
            session.rollback()
            logger.exception("Could not drop the clicks partition %s; its rows are deleted one by one",
                             partition.name)
            continue
        for cid, n in gone.items():
            dropped[cid] = dropped.get(cid, 0) + n
    return dropped


def _drop(session, partition, cuts, keep) -> dict[int, int]:
    month = and_(_c.created_at >= partition.start, _c.created_at < partition.end)
    per_campaign = dict(session.execute(
        select(_c.campaign_id, func.count()).where(month).group_by(_c.campaign_id)
    ).all())
    lock_campaigns(session, per_campaign)
    blocked = [cid for cid in per_campaign if cid not in cuts or cuts[cid][1] < partition.end]
    attributed = session.execute(text(
        f'SELECT 1 FROM smstrack_conversions v JOIN "{partition.name}" c ON c.id = v.click_pk LIMIT 1'
    )).first()
    if blocked or attributed:
        session.commit()
        return {}
    for cid in sorted(per_campaign):
        keep(session, cid, month)
    drop_partition(session.connection(), partition.name)
    session.commit()
    logger.info("Dropped the clicks partition %s (%d clicks)", partition.name, sum(per_campaign.values()))
    return per_campaign
