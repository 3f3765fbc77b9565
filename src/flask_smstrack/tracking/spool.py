"""The spool: clicks that could not be written, kept in files and written
later by ``flask smstrack replay-spool``."""
from __future__ import annotations

import datetime as dt
import glob
import json
import logging
import os
import time
from typing import Any

from flask import current_app
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ..config import Keys
from ..models import Click, RollupState
from ..state import get_state

logger = logging.getLogger("flask_smstrack")

_clicks = Click.__table__
_INSERT_CLICK = insert(_clicks)


def spool_click(spool_dir: str, row: dict[str, Any]) -> None:
    try:
        os.makedirs(spool_dir, exist_ok=True)
        line = json.dumps(dict(row, created_at=row["created_at"].isoformat())) + "\n"
        path = os.path.join(spool_dir, f"clicks-{os.getpid()}.jsonl")
        with open(path, "a", encoding="utf-8") as f:
            f.write(line)
    except Exception:
        logger.exception("Could not spool click %s either; it is lost", row.get("click_id"))


def replay_spool(progress=None) -> tuple[int, int]:
    """Write spooled clicks to the database.

    Returns ``(written, already_present)``. Files are renamed before they are
    read, so processes that keep spooling write to new files meanwhile. A
    click older than its campaign's rollup cut is added to the rollups in
    the same transaction, under the campaign's rollup lock.
    """
    from ..reports.rollup_edits import lock_campaigns, shift_clicks

    state = get_state()
    written = present = 0
    paths = spool_files(state.spool_dir)
    s = RollupState.__table__.c
    for path in paths:
        claimed = f"{path}.{int(time.time() * 1000)}.replaying"
        os.rename(path, claimed)
        with open(claimed, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        store_ip = current_app.config[Keys.STORE_IP]
        for row in rows:
            row["created_at"] = dt.datetime.fromisoformat(row["created_at"])
            if not store_ip:
                row["ip"] = None
            with Session(bind=state.db.engine) as session, session.begin():
                found = session.execute(
                    select(_clicks.c.id).where(_clicks.c.click_id == row["click_id"])
                ).first()
                if found:
                    present += 1
                else:
                    lock_campaigns(session, [row["campaign_id"]])
                    new_id = session.execute(_INSERT_CLICK.returning(_clicks.c.id), row).scalar_one()
                    cut = session.execute(
                        select(s.rolled_until).where(s.campaign_id == row["campaign_id"])
                    ).scalar()
                    if cut is not None and row["created_at"] < cut:
                        shift_clicks(session, _clicks.c.id == new_id, 1)
                    written += 1
            if progress is not None:
                progress(1)
        os.remove(claimed)
    return written, present


def spool_files(spool_dir: str) -> list[str]:
    """The spool files waiting to be replayed, by name (files being replayed
    are renamed out of this pattern)."""
    return sorted(glob.glob(os.path.join(glob.escape(spool_dir), "clicks-*.jsonl")))


def spooled_count() -> int:
    """How many clicks wait in the spool."""
    total = 0
    for path in spool_files(get_state().spool_dir):
        with open(path, encoding="utf-8") as f:
            total += sum(1 for line in f if line.strip())
    return total
