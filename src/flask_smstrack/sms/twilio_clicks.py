"""Twilio Link Shortening click events, recorded as clicks once each: the
click id comes from the message and the click's time, so retries and
replays add nothing."""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from ..config import Keys
from ..models import Click, Link, utcnow
from ..state import get_state
from ..tracking.classify import classify_agent
from ..tracking.clicks import click_id_at, click_row, join_recipient

logger = logging.getLogger("flask_smstrack")

_clicks = Click.__table__
_INSERT_CLICK = insert(_clicks)


def _same_url(a: str, b: str) -> bool:
    return a.strip().rstrip("/") == b.strip().rstrip("/")


def twilio_click_id(message_sid: str, clicked_at: dt.datetime) -> str:
    """The click id of the click on ``message_sid``'s link at ``clicked_at``:
    the same for every delivery of the same event, so the unique index on
    click ids keeps one. Its time part is the click's, as for every click id
    (ids sort by time); the rest is a digest of the message and the time."""
    millis = int(clicked_at.timestamp() * 1000)
    digest = hashlib.sha256(f"twilio-click|{message_sid}|{millis}".encode()).digest()[:12]
    return click_id_at(millis, digest)


def record_twilio_click(
    message_sid: str,
    clicked_at: dt.datetime,
    *,
    link: str | None = None,
    user_agent: str | None = None,
    preview: bool = False,
) -> str | None:
    """Record a click event of Twilio's Link Shortening as a click.

    The click belongs to the recipient whose message is ``message_sid``, and
    to the campaign link whose destination is ``link`` (else the campaign's
    first link). It is classified by ``user_agent`` (``preview`` forces a
    link preview) and placed like a click on the recipient's own link (see
    :func:`join_recipient`). Written in one transaction with ``created_at``
    now, like every click.

    A click is one per message and ``clicked_at`` (Twilio's ``click_time``):
    its id is :func:`twilio_click_id`, so Twilio retrying a webhook, or the
    same event sent again, records the click once, even when the copies
    arrive at the same moment.

    Returns the click id, or ``None`` when nothing is recorded: the
    message is not one of ours, its campaign has no link, or ``link`` is
    one of our own short links, whose redirect records the click itself.
    """
    from ..models import Recipient

    state = get_state()
    r = Recipient.__table__.c
    links = Link.__table__.c
    prefix = current_app.config[Keys.LINK_PREFIX].rstrip("/") + "/"
    click_id = twilio_click_id(message_sid, clicked_at)
    try:
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
            if conn.dialect.name == "postgresql":
                # The partitioned clicks (revision 0010) keep a click id
                # unique only with its time, and each copy of the event has
                # its own ``created_at``: copies arriving at once wait here.
                conn.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(click_id, 0))))
            if conn.execute(select(_clicks.c.id).where(_clicks.c.click_id == click_id)).first() is not None:
                return click_id  # already recorded
            chosen = next((c for c in candidates if link and _same_url(c.destination_url, link)), candidates[0])
            agent = classify_agent(user_agent or "")
            kind = "preview" if preview else agent.kind
            row = click_row(
                click_id, utcnow(), chosen.id, recipient.campaign_id, kind, agent,
                recipient_id=recipient.id, variant_id=recipient.variant_id, source="twilio", is_first=kind == "human",
            )
            if kind == "human":
                join_recipient(conn, row)
            conn.execute(_INSERT_CLICK, row)
    except IntegrityError:
        # The same event, recorded by another request in the meantime: this
        # transaction (the recipient's first click too) is undone.
        with state.db.engine.connect() as conn:
            if conn.execute(select(_clicks.c.id).where(_clicks.c.click_id == click_id)).first() is None:
                raise
    return click_id
