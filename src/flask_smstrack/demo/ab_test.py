"""A second demo campaign, an A/B test sent to imported recipients, so that
a new install shows the SMS features too (``flask smstrack demo``).

It is made through the code paths a real campaign takes:

- the campaign (priced per segment), its link and its two variants through
  :mod:`.manage` and the schemas;
- 2,000 recipients imported from generated CSV rows by
  :func:`~.recipients.import_recipients`: US numbers of real area codes in
  the 555-0100 to 555-0199 range set aside for fiction, written the ways
  people write them, with ``first_name`` and ``city`` columns;
- each recipient's message, variant and own short link made by
  :func:`~.messages.prepare_messages`.

The send and its delivery receipts are then simulated with bulk updates: a
MessageSid each, about 95% delivered, 3% undelivered (carrier errors 30003
and 30005) and 2% left at ``sent`` (no receipt came). Clicks and
conversions are written with bulk Core inserts, in the shape the redirect
and the collector give them (see :mod:`.demo` for the agents, networks and
click ids):

- each clicking recipient's first human click is their unique click, on
  the campaign link, with the recipient and the variant;
- some come back later from the same device (a repeat), some messages are
  passed on and clicked from another device (a ``forward``);
- iPhones fetch a link preview as some messages arrive;
- about 12% of the clickers buy.

Variant B's shorter, more urgent text is clicked more (about 14% of the
messages that arrived against 9%), so the A/B test calls B the winner on
CTR.

The same seed gives the same numbers. Variants are given by a hash of the
campaign id and the phone (see :func:`~.messages.assign_variants`), so the
phones in each variant change from run to run; what happens to a message is
drawn from a generator of its own, seeded with the seed, the variant and
the message's rank in it, so the counts, per variant and overall, do not.
"""
from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Callable
from typing import Any

from flask import current_app, has_request_context
from sqlalchemy import delete

from ..config import Keys
from ..manage import add_variant, create_campaign, create_link
from ..models import Campaign, Click, Conversion, Link, Recipient, Variant, utcnow
from ..reports.rollups import reset as reset_rollups
from ..schemas import CampaignSchema, LinkSchema, VariantSchema
from ..sms.messages import prepare_messages
from ..sms.recipients import import_recipients, read_csv
from ..state import get_state
from . import common
from .ab_traffic import VARIANTS, _Plan
from .people import AREAS, PER_AREA, recipients_csv

logger = logging.getLogger("flask_smstrack")


#: The name of the A/B test demo campaign.
DEMO_SMS_NAME = "Demo: A/B test (SMS)"


#: Recipients imported.
RECIPIENTS = 2000


#: ``progress`` steps per recipient: imported, message written, then sent
#: and clicked.
STEPS_PER_RECIPIENT = 3


#: The base of the messages' short links when ``SMSTRACK_BASE_URL`` is not
#: set and there is no request (``make run`` serves here).
PLACEHOLDER_BASE_URL = "http://127.0.0.1:8000"


#: The price of one segment, all in (the provider's price, carrier fees and
#: the SMS platform's share), in USD.
COST_PER_SEGMENT = "0.0300"




def create_demo_sms_campaign(
    *,
    recipients: int = RECIPIENTS,
    owner_id: str | None = None,
    seed: int | str | None = None,
    now: dt.datetime | None = None,
    base_url: str | None = None,
    progress: Callable[[int], Any] | None = None,
) -> Campaign:
    """Create the A/B test demo campaign: its link and variants, its
    imported recipients and their messages, the send with its delivery
    receipts, and the clicks and conversions that followed.

    ``base_url`` is where the messages' short links point; by default
    ``SMSTRACK_BASE_URL``, else the request's host, else
    :data:`PLACEHOLDER_BASE_URL`. ``progress`` is called with steps done,
    :data:`STEPS_PER_RECIPIENT` per recipient in all. When anything fails (or
    the command is interrupted), what was written is removed again and the
    error is raised.
    """
    if not 1 <= recipients <= len(AREAS) * PER_AREA:
        raise ValueError(f"recipients must be between 1 and {len(AREAS) * PER_AREA}")
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    rng = random.Random(seed)
    sent_at = common.demo_send_time(now)
    campaign = create_campaign(
        CampaignSchema().load(
            {"name": DEMO_SMS_NAME, "currency": "USD", "cost_per_segment": COST_PER_SEGMENT}
        ),
        owner_id,
    )
    try:
        create_link(
            campaign,
            LinkSchema().load(
                {
                    "destination_url": common.SHOP + "/spring",
                    "utm": {
                        "utm_source": "sms",
                        "utm_medium": "sms",
                        "utm_campaign": "spring-sale",
                        "utm_content": "ab-test",
                    },
                }
            ),
        )
        for name, text, _ in VARIANTS:
            add_variant(campaign, VariantSchema().load({"name": name, "message_template": text, "weight": 1}))

        result = import_recipients(campaign.id, read_csv(recipients_csv(rng, recipients)), region="US",
                                   progress=progress)
        if result.imported != recipients or result.errors:
            raise RuntimeError(f"the demo's recipients did not import: {result.errors[:3]}")
        _prepare(campaign, base_url, progress)

        plan = _Plan(campaign, sent_at, now, rng)
        plan.write()
        if progress is not None:
            progress(recipients)
        common.mark_sent(campaign, sent_at)
    except BaseException:
        common.remove_unfinished(campaign.id, _remove)
        raise
    return campaign


def _prepare(campaign: Campaign, base_url: str | None, progress: Callable[[int], Any] | None) -> None:
    """Render the messages, with ``base_url`` (or the placeholder) as the
    short links' base when the app has none, for this call only."""
    config = current_app.config
    before = config.get(Keys.BASE_URL)
    if base_url is None and not before and not has_request_context():
        base_url = PLACEHOLDER_BASE_URL
    if base_url is None:
        prepare_messages(campaign, progress=progress)
        return
    config[Keys.BASE_URL] = base_url
    try:
        prepare_messages(campaign, progress=progress)
    finally:
        config[Keys.BASE_URL] = before


def _remove(campaign_id: int) -> None:
    """Delete a half-made demo campaign and everything written for it.

    Explicit deletes: SQLite does not enforce the foreign keys' cascades
    (and may give the campaign's id to the next campaign)."""
    db = get_state().db
    db.session.rollback()
    conversions, clicks, links = Conversion.__table__, Click.__table__, Link.__table__
    db.session.execute(
        delete(conversions).where(
            (conversions.c.campaign_id == campaign_id)
            | conversions.c.order_id.like(f"{common.order_prefix(campaign_id)}%")
        )
    )
    db.session.execute(delete(clicks).where(clicks.c.campaign_id == campaign_id))
    # Recipients' own links first: they point at the campaign link.
    db.session.execute(delete(links).where(links.c.campaign_id == campaign_id, links.c.parent_id.is_not(None)))
    db.session.execute(delete(links).where(links.c.campaign_id == campaign_id))
    db.session.execute(delete(Variant.__table__).where(Variant.__table__.c.campaign_id == campaign_id))
    db.session.execute(delete(Recipient.__table__).where(Recipient.__table__.c.campaign_id == campaign_id))
    db.session.execute(delete(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id))
    db.session.commit()
    reset_rollups(campaign_id)
