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

from ..config import Keys
from ..models import Click
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
    read, so processes that keep spooling write to new files meanwhile.
    """
    from ..reports.rollups import reset

    state = get_state()
    written = present = 0
    late_campaigns: set[int] = set()
    paths = sorted(glob.glob(os.path.join(state.spool_dir, "clicks-*.jsonl")))
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
            with state.db.engine.begin() as conn:
                found = conn.execute(
                    select(_clicks.c.id).where(_clicks.c.click_id == row["click_id"])
                ).first()
                if found:
                    present += 1
                else:
                    conn.execute(_INSERT_CLICK, row)
                    written += 1
                    late_campaigns.add(row["campaign_id"])
            if progress is not None:
                progress(1)
        os.remove(claimed)
    # Written after their time: the campaigns' rollups are rebuilt.
    for campaign_id in sorted(late_campaigns):
        reset(campaign_id)
    return written, present


def spooled_count() -> int:
    """How many clicks wait in the spool."""
    state = get_state()
    total = 0
    for path in glob.glob(os.path.join(state.spool_dir, "clicks-*.jsonl")):
        with open(path, encoding="utf-8") as f:
            total += sum(1 for line in f if line.strip())
    return total
