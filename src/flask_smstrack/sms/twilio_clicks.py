"""Twilio Link Shortening click events, recorded as clicks once each: the
click id comes from the event, so retries and replays add nothing."""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import insert, select

from ..config import Keys
from ..models import Click, Link, utcnow
from ..state import get_state
from ..tracking.classify import classify_agent
from ..tracking.clicks import click_id_at, click_row, join_recipient, new_click_id

logger = logging.getLogger("flask_smstrack")

_clicks = Click.__table__
_INSERT_CLICK = insert(_clicks)


def _same_url(a: str, b: str) -> bool:
    return a.strip().rstrip("/") == b.strip().rstrip("/")


def record_twilio_click(
    message_sid: str,
    *,
    link: str | None = None,
    user_agent: str | None = None,
    preview: bool = False,
    event: tuple[dt.datetime, str] | None = None,
) -> str | None:
    """Record a click event of Twilio's Link Shortening as a click.

    The click belongs to the recipient whose message is ``message_sid``, and
    to the campaign link whose destination is ``link`` (else the campaign's
    first link). It is classified by ``user_agent`` (``preview`` forces a
    link preview) and placed like a click on the recipient's own link (see
    :func:`join_recipient`). Written in one transaction with ``created_at``
    now, like every click.

    ``event`` is the click's time and a key naming the event (its message,
    time, link...): the click id is derived from them, so Twilio retrying a
    webhook, or the same request sent again, records the click once.

    Returns the click id, or ``None`` when nothing is recorded: the
    message is not one of ours, its campaign has no link, or ``link`` is
    one of our own short links, whose redirect records the click itself.
    """
    from ..models import Recipient

    state = get_state()
    r = Recipient.__table__.c
    links = Link.__table__.c
    prefix = current_app.config[Keys.LINK_PREFIX].rstrip("/") + "/"
    with state.db.engine.begin() as conn:
        recipient = conn.execute(
            select(r.id, r.campaign_id, r.variant_id).where(r.message_sid == message_sid)
        ).first()
        if recipient is None:
            return None
        if link:
            path = urlsplit(link.strip()).path
            if path.startswith(prefix):
                code = path[len(prefix):].strip("/")
                if code and conn.execute(select(links.id).where(links.code == code)).first() is not None:
                    return None
        candidates = conn.execute(
            select(links.id, links.destination_url)
            .where(links.campaign_id == recipient.campaign_id, links.recipient_id.is_(None))
            .order_by(links.id)
        ).all()
        if not candidates:
            return None
        chosen = next((c for c in candidates if link and _same_url(c.destination_url, link)), candidates[0])
        agent = classify_agent(user_agent or "")
        kind = "preview" if preview else agent.kind
        now = utcnow()
        if event is None:
            click_id = new_click_id()
        else:
            clicked_at, key = event
            digest = hashlib.sha256(f"twilio-click|{key}".encode()).digest()[:12]
            click_id = click_id_at(int(clicked_at.timestamp() * 1000), digest)
            if conn.execute(select(_clicks.c.id).where(_clicks.c.click_id == click_id)).first() is not None:
                return click_id  # already recorded
        row = click_row(
            click_id, now, chosen.id, recipient.campaign_id, kind, agent,
            recipient_id=recipient.id, variant_id=recipient.variant_id, source="twilio", is_first=kind == "human",
        )
        if kind == "human":
            join_recipient(conn, row)
        conn.execute(_INSERT_CLICK, row)
    return row["click_id"]
