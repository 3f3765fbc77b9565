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

import csv
import datetime as dt
import io
import logging
import math
import random
import secrets
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate
from typing import Any

from flask import current_app, has_request_context
from sqlalchemy import bindparam, delete, insert, select, update

from ..manage import add_variant, create_campaign, create_link
from ..models import Campaign, Click, Conversion, Link, Recipient, Variant, utcnow
from ..reports.rollups import reset as reset_rollups
from ..schemas import CampaignSchema, LinkSchema, VariantSchema
from ..sms.messages import prepare_messages
from ..sms.recipients import import_recipients, read_csv
from ..state import get_state
from ..tracking.classify import Agent, classify_agent
from ..tracking.clicks import click_row
from . import spring_sale as demo

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
#: The price of one segment, in USD.
COST_PER_SEGMENT = "0.0079"

#: (name, message, share of the messages that arrived whose recipient clicks).
VARIANTS = (
    ("A", "Hi {first_name}, our spring sale is on: 20% off everything {link}", 0.09),
    ("B", "{first_name}: 20% off everything ends tonight! {link}", 0.14),
)
#: The click shares above vary by this much from seed to seed.
CTR_JITTER = 0.005

#: Delivery receipts: delivered, undelivered; the rest get none (``sent``).
DELIVERED_SHARE = 0.95
UNDELIVERED_SHARE = 0.03
#: Twilio's errors for an undelivered message: unreachable handset, and
#: unknown handset (most undelivered messages are the first).
_ERROR_CODES = (("30003", 0.7), ("30005", 0.3))
#: The send took this long (a toll-free number's pace).
SEND_SECONDS = 240

#: iPhones whose Messages app fetches a link preview on arrival.
PREVIEW_SHARE = 0.20
#: Of the clickers: who tap on a computer (Messages on a Mac, Google
#: Messages for web), who come back, whose message is passed on and
#: clicked from another device, who buy.
DESKTOP_SHARE = 0.07
REPEAT_SHARE = 0.15
FORWARD_SHARE = 0.08
CONVERT_SHARE = 0.12
#: Share of human clicks whose landing page reported back (all that buy).
CONFIRMED_SHARE = demo.CONFIRMED_SHARE

#: (area code, city, hours ahead of the sender's clock). Fixed differences,
#: like :mod:`.demo`'s, so a seed gives the same data in any week.
_AREAS: tuple[tuple[str, str, int], ...] = (
    ("212", "New York", 0), ("718", "Brooklyn", 0), ("617", "Boston", 0), ("215", "Philadelphia", 0),
    ("202", "Washington", 0), ("404", "Atlanta", 0), ("305", "Miami", 0), ("704", "Charlotte", 0),
    ("313", "Detroit", 0),
    ("312", "Chicago", -1), ("214", "Dallas", -1), ("713", "Houston", -1), ("512", "Austin", -1),
    ("615", "Nashville", -1), ("612", "Minneapolis", -1),
    ("415", "San Francisco", -3), ("213", "Los Angeles", -3), ("206", "Seattle", -3), ("503", "Portland", -3),
    ("619", "San Diego", -3),
)
#: Numbers per area code: 555-0100 to 555-0199.
_PER_AREA = 100

_FIRST_NAMES = (
    "James", "Mary", "Michael", "Patricia", "Robert", "Jennifer", "John", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Karen", "Christopher", "Sarah",
    "Charles", "Lisa", "Daniel", "Nancy", "Matthew", "Sandra", "Anthony", "Ashley", "Mark", "Emily",
    "Steven", "Michelle", "Andrew", "Amanda", "Joshua", "Melissa", "Kevin", "Stephanie", "Brian", "Rebecca",
    "Jose", "Laura", "Ryan", "Maria", "Jacob", "Emma", "Nicholas", "Olivia", "Tyler", "Sophia",
    "Brandon", "Ava", "Luis", "Isabella", "Noah", "Mia", "Jordan", "Chloe", "Aaron", "Grace",
)

#: Where forwarded messages are opened: (country, share).
_FORWARD_COUNTRIES = (("US", 0.86), ("CA", 0.06), ("MX", 0.04), ("GB", 0.04))


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
    if not 1 <= recipients <= len(_AREAS) * _PER_AREA:
        raise ValueError(f"recipients must be between 1 and {len(_AREAS) * _PER_AREA}")
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    rng = random.Random(seed)
    sent_at = demo.demo_send_time(now)
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
                    "destination_url": demo._SHOP + "/spring",
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

        result = import_recipients(campaign.id, read_csv(_recipients_csv(rng, recipients)), region="US",
                                   progress=progress)
        if result.imported != recipients or result.errors:
            raise RuntimeError(f"the demo's recipients did not import: {result.errors[:3]}")
        _prepare(campaign, base_url, progress)

        plan = _Plan(campaign, sent_at, now, rng)
        plan.write()
        if progress is not None:
            progress(recipients)
        demo.mark_sent(campaign, sent_at)
    except BaseException:
        demo.remove_unfinished(campaign.id, _remove)
        raise
    return campaign


def _recipients_csv(rng: random.Random, n: int) -> str:
    """``phone,first_name,city`` for ``n`` people, numbers written as people
    write them."""
    numbers = rng.sample(range(len(_AREAS) * _PER_AREA), n)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["phone", "first_name", "city"])
    for number in numbers:
        area, city, _ = _AREAS[number // _PER_AREA]
        line = f"{100 + number % _PER_AREA:04d}"
        style = rng.random()
        if style < 0.4:
            phone = f"({area}) 555-{line}"
        elif style < 0.7:
            phone = f"+1{area}555{line}"
        elif style < 0.9:
            phone = f"{area}-555-{line}"
        else:
            phone = f"+1 {area} 555 {line}"
        writer.writerow([phone, _FIRST_NAMES[rng.randrange(len(_FIRST_NAMES))], city])
    return out.getvalue()


def _prepare(campaign: Campaign, base_url: str | None, progress: Callable[[int], Any] | None) -> None:
    """Render the messages, with ``base_url`` (or the placeholder) as the
    short links' base when the app has none, for this call only."""
    config = current_app.config
    before = config.get("SMSTRACK_BASE_URL")
    if base_url is None and not before and not has_request_context():
        base_url = PLACEHOLDER_BASE_URL
    if base_url is None:
        prepare_messages(campaign, progress=progress)
        return
    config["SMSTRACK_BASE_URL"] = base_url
    try:
        prepare_messages(campaign, progress=progress)
    finally:
        config["SMSTRACK_BASE_URL"] = before


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
            | conversions.c.order_id.like(f"{demo._order_prefix(campaign_id)}%")
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


# -- what happens to each message -------------------------------------------


def _weighted(pairs) -> tuple[list[Any], list[float]]:
    items, weights = zip(*pairs)
    return list(items), list(accumulate(weights))


def _pick(rng: random.Random, items: list[Any], cum: list[float]) -> Any:
    return items[bisect_right(cum, rng.random() * cum[-1])]


def _networks(country: str, ahead: int | None = None) -> tuple[str, ...]:
    """The carriers' networks of a country (and time zone), from :mod:`.demo`."""
    found: list[str] = []
    for code, _, hours, prefixes in demo._COUNTRIES:
        if code == country and (ahead is None or hours == ahead):
            found += [p for p in prefixes if p not in found]
    return tuple(found)


@dataclass(frozen=True, slots=True)
class _Message:
    recipient_id: int
    variant_id: int
    #: Hours ahead of the sender's clock.
    ahead: int
    #: When it was handed to the provider, microseconds after the epoch.
    sent_us: int


class _Plan:
    """Draws the send, the receipts, the clicks and the conversions of the
    prepared campaign, and writes them."""

    def __init__(self, campaign: Campaign, sent_at: dt.datetime, now: dt.datetime, rng: random.Random) -> None:
        self.campaign = campaign
        self.link_id = campaign.links[0].id
        self.send_us = demo._micros(sent_at)
        self.now_us = demo._micros(now)
        self.end_us = min(self.send_us + int(demo.HORIZON.total_seconds() * 1e6), self.now_us)
        #: Each message's generators are seeded from this.
        self.base = rng.getrandbits(64)
        self.rng = rng
        #: Ids and MessageSids are fresh on every run (the same seed must not
        #: collide with an earlier demo); everything else follows the seed.
        self.id_rng = random.Random(secrets.randbits(128))

        humans = [(w, classify_agent(ua), ref) for w, ua, ref in demo._HUMAN_AGENTS]
        self.phones = _weighted((agent, w) for w, agent, ref in humans if ref is None and agent.device_type == "mobile")
        self.computers = {
            "iOS": _weighted((agent, w) for w, agent, _ in humans if agent.os == "Mac OS X"),
            "Android": _weighted((agent, w) for w, agent, _ in humans if agent.os == "Windows"),
        }
        self.anyone = _weighted(((agent, ref), w) for w, agent, ref in humans)
        self.preview = classify_agent(demo._PREVIEW_AGENTS[0][1])  # Messages on an iPhone
        self.networks = {ahead: _networks("US", ahead) for _, _, ahead in _AREAS}
        self.forward_countries = _weighted(((code, _networks(code)), share) for code, share in _FORWARD_COUNTRIES)
        self.zones = {area: ahead for area, _, ahead in _AREAS}

        self.receipts: list[dict[str, Any]] = []
        self.clicks: list[dict[str, Any]] = []
        #: (conversion row, the click it follows).
        self.conversions: list[tuple[dict[str, Any], dict[str, Any]]] = []

    # -- drawing ------------------------------------------------------------

    def _messages(self) -> list[_Message]:
        """The campaign's messages in the order they were sent (the import
        order), a steady stream over :data:`SEND_SECONDS`."""
        r = Recipient.__table__.c
        rows = get_state().db.session.execute(
            select(r.id, r.phone, r.variant_id).where(r.campaign_id == self.campaign.id).order_by(r.id)
        ).all()
        step = SEND_SECONDS * 1e6 / max(len(rows), 1)
        return [
            _Message(rid, variant_id, self.zones[phone[2:5]], self.send_us + int((i + self.rng.random()) * step))
            for i, (rid, phone, variant_id) in enumerate(rows)
        ]

    def draw(self) -> None:
        messages = self._messages()
        for name, _, ctr in VARIANTS:
            variant = next(v for v in self.campaign.variants if v.name == name)
            members = [m for m in messages if m.variant_id == variant.id]
            # One generator per message for its fate and one for its times
            # and networks, which depend on where the recipient lives.
            fates = [random.Random(f"{self.base}:{name}:{rank}") for rank in range(len(members))]
            times = [random.Random(f"{self.base}:{name}:{rank}:when") for rank in range(len(members))]
            statuses = [self._status(fate) for fate in fates]
            arrived = [rank for rank, status in enumerate(statuses) if status != "undelivered"]
            chooser = random.Random(f"{self.base}:{name}")
            share = ctr + chooser.uniform(-CTR_JITTER, CTR_JITTER)
            clickers = set(chooser.sample(arrived, round(share * len(arrived))))
            for rank, message in enumerate(members):
                self._message(message, statuses[rank], rank in clickers, fates[rank], times[rank])

    @staticmethod
    def _status(fate: random.Random) -> str:
        u = fate.random()
        if u < DELIVERED_SHARE:
            return "delivered"
        if u < DELIVERED_SHARE + UNDELIVERED_SHARE:
            return "undelivered"
        return "sent"

    def _message(self, m: _Message, status: str, clicks: bool, fate: random.Random, when: random.Random) -> None:
        # Decisions first, from the message's own generator...
        phone = _pick(fate, *self.phones)
        error = _pick(fate, *_weighted(_ERROR_CODES)) if status == "undelivered" else None
        preview = status == "delivered" and phone.os == "iOS" and fate.random() < PREVIEW_SHARE
        if clicks:
            device = _pick(fate, *self.computers[phone.os]) if fate.random() < DESKTOP_SHARE else phone
            repeat = fate.random() < REPEAT_SHARE
            forward = fate.random() < FORWARD_SHARE
            buys = fate.random() < CONVERT_SHARE
            buys_on_return = buys and repeat and fate.random() < 0.4
            # A click that led to a purchase was seen by the snippet.
            confirmed = [
                (buys and not buys_on_return) or fate.random() < CONFIRMED_SHARE,
                buys_on_return or fate.random() < CONFIRMED_SHARE,
            ]
            if forward:
                other, referrer = _pick(fate, *self.anyone)
                while (other.device_type, other.os, other.browser) == (device.device_type, device.os, device.browser):
                    other, referrer = _pick(fate, *self.anyone)
                country, networks = _pick(fate, *self.forward_countries)
                forward_confirmed = fate.random() < CONFIRMED_SHARE
            order = self._order(fate) if buys else None

        # ...then times and networks, which depend on the recipient's zone.
        if status == "delivered":
            status_us = m.sent_us + int(min(when.lognormvariate(math.log(4), 0.6), 120) * 1e6)
        elif status == "undelivered":
            status_us = m.sent_us + int(min(when.lognormvariate(math.log(25), 0.8), 900) * 1e6)
        else:
            status_us = m.sent_us + int(when.uniform(0.2, 1.5) * 1e6)
        self.receipts.append(
            {
                "rid": m.recipient_id, "r_status": status,
                "r_sid": "SM" + self.id_rng.getrandbits(128).to_bytes(16, "big").hex(),
                "r_sent_at": demo._from_micros(m.sent_us), "r_status_at": demo._from_micros(status_us),
                "r_error": error,
            }
        )
        ip = demo.carrier_ip(when, self.networks[m.ahead])
        if preview:
            at = status_us + int(when.uniform(0.5, 4) * 1e6)
            self._click(m, at, "preview", self.preview, country="US", ip=ip)
        if not clicks:
            return
        arrived_us = status_us if status == "delivered" else m.sent_us + 5_000_000
        if device is not phone:
            ip = demo.carrier_ip(when, self.networks[m.ahead])  # the home network
        first = self._click(
            m, self._human_time(when, arrived_us, m.ahead), "human", device,
            is_first=True, human_confirmed=confirmed[0], country="US", ip=ip,
        )
        converts_on = first
        if repeat:
            at = self._later(when, first, 3 * 3600, 1.2)
            again = self._click(
                m, at, "human", device, human_confirmed=confirmed[1], visitor_id=first["click_id"],
                country="US", ip=ip,
            )
            if buys_on_return:
                converts_on = again
        if forward:
            at = self._later(when, first, 2 * 3600, 1.3)
            self._click(
                m, at, "forward", other, human_confirmed=forward_confirmed, country=country,
                ip=demo.carrier_ip(when, networks), referrer_host=referrer,
            )
        if order is not None:
            if when.random() < 0.85:
                delay_s = when.lognormvariate(math.log(12 * 60), 1.3)
            else:
                delay_s = when.lognormvariate(math.log(10 * 3600), 0.8)
            at = converts_on["_us"] + int(min(max(delay_s, 30.0), 2 * 86400.0) * 1e6)
            order["created_at"] = demo._from_micros(min(at, self.now_us))
            self.conversions.append((order, converts_on))

    def _human_time(self, when: random.Random, arrived_us: int, ahead: int) -> int:
        """A first click after the message arrived: most in the first hours,
        a tail over the week, fewer at night in the recipient's zone."""
        peak = max(demo._DAILY_RHYTHM)
        for _ in range(200):
            u = when.random()
            if u < 0.5:
                delay_s = when.lognormvariate(math.log(20 * 60), 1.2)
            elif u < 0.85:
                delay_s = when.lognormvariate(math.log(5 * 3600), 1.0)
            else:
                delay_s = when.expovariate(1 / (2.5 * 86400))
            at = arrived_us + int(max(delay_s, 3.0) * 1e6)
            if at >= self.end_us:
                continue
            hour = (demo._SEND_HOUR + ahead + (at - self.send_us) // 3_600_000_000) % 24
            if when.random() * peak < demo._DAILY_RHYTHM[hour]:
                return at
        return min(arrived_us + 600_000_000, self.end_us - 1)

    def _later(self, when: random.Random, click: dict[str, Any], median_s: float, sigma: float) -> int:
        """A moment after ``click``, before the end of the demo's week."""
        at = click["_us"] + int(max(when.lognormvariate(math.log(median_s), sigma), 20.0) * 1e6)
        return min(at, max(self.end_us - 1, click["_us"] + 1))

    def _click(self, m: _Message, micros: int, kind: str, agent: Agent, **fields: Any) -> dict[str, Any]:
        """A click on the recipient's own link, as the redirect records it:
        counted for the campaign link, with the recipient and the variant."""
        row = click_row(
            demo.demo_click_id(micros, self.id_rng.getrandbits(96).to_bytes(12, "big")),
            demo._from_micros(micros), self.link_id, self.campaign.id, kind, agent,
            recipient_id=m.recipient_id, variant_id=m.variant_id, **fields,
        )
        row["_us"] = micros
        self.clicks.append(row)
        return row

    @staticmethod
    def _order(fate: random.Random) -> dict[str, Any]:
        cents = 0
        while not 1900 <= cents <= 18000:
            cents = int(fate.lognormvariate(math.log(5500), 0.55))
        server = fate.random() < 0.15
        return {
            "event": "purchase",
            "revenue": Decimal(cents).scaleb(-2),
            "currency": "USD",
            "source": "server" if server else "snippet",
            "trust": "verified" if server else "unverified",
        }

    # -- writing ------------------------------------------------------------

    def write(self) -> None:
        """Draw, then write the receipts, the clicks in time order and the
        conversions, in one transaction."""
        self.draw()
        session = get_state().db.session
        r = Recipient.__table__.c
        receipt = (
            update(Recipient.__table__)
            .where(r.id == bindparam("rid"))
            .values(
                status=bindparam("r_status"), message_sid=bindparam("r_sid"), sent_at=bindparam("r_sent_at"),
                status_at=bindparam("r_status_at"), error_code=bindparam("r_error"),
            )
        )
        connection = session.connection()
        for start in range(0, len(self.receipts), demo.BATCH_SIZE):
            connection.execute(receipt, self.receipts[start:start + demo.BATCH_SIZE])

        self.clicks.sort(key=lambda row: row["_us"])
        rows = [{k: v for k, v in row.items() if k != "_us"} for row in self.clicks]
        clicks = Click.__table__
        for start in range(0, len(rows), demo.BATCH_SIZE):
            session.execute(insert(clicks), rows[start:start + demo.BATCH_SIZE])

        if self.conversions:
            self.conversions.sort(key=lambda pair: pair[0]["created_at"])
            wanted = [click["click_id"] for _, click in self.conversions]
            pks: dict[str, int] = {}
            for start in range(0, len(wanted), demo.BATCH_SIZE):
                pks.update(
                    session.execute(
                        select(clicks.c.click_id, clicks.c.id).where(
                            clicks.c.click_id.in_(wanted[start:start + demo.BATCH_SIZE])
                        )
                    ).all()
                )
            prefix = demo._order_prefix(self.campaign.id)
            values = []
            for seq, (order, click) in enumerate(self.conversions, 1):
                values.append(
                    {
                        **order,
                        "click_pk": pks[click["click_id"]],
                        "reported_click_id": click["click_id"],
                        "campaign_id": click["campaign_id"],
                        "link_id": click["link_id"],
                        "recipient_id": click["recipient_id"],
                        "variant_id": click["variant_id"],
                        "order_id": f"{prefix}{1000 + seq}",
                    }
                )
            session.execute(insert(Conversion.__table__), values)
        session.commit()
