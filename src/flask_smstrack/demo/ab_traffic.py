"""How the A/B demo's recipients behave: delivery, previews, taps, repeats,
forwards and orders, drawn per message from a seeded random generator."""
from __future__ import annotations

import datetime as dt
import math
import random
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from ..models import EVERY_OWNER, Campaign, Click, Conversion, OptOutEvent, Recipient, Suppression
from ..reports.rollups import dialect_insert
from ..sms.suppression import phone_hasher, phone_tail
from ..state import get_state
from ..tracking.classify import Agent, classify_agent
from ..tracking.clicks import click_row
from . import agents, common, sampling
from .people import AREAS, FORWARD_COUNTRIES
from .sampling import pick, weighted

#: (name, message, share of the messages that arrived whose recipient clicks).
VARIANTS = (
    ("A", "Hi {first_name}, our spring sale is on: 20% off everything {link} Reply STOP to opt out", 0.09),
    ("B", "{first_name}: 20% off everything ends tonight! {link} Reply STOP to opt out", 0.14),
)


#: Share of the delivered messages whose recipient replies STOP, per
#: variant: the urgent one annoys a few more.
OPT_OUT_SHARES = {"A": 0.006, "B": 0.011}


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


#: About 5% of the people who click buy (SMS offers see 1-8%).
CONVERT_SHARE = 0.05


#: Share of human clicks whose landing page reported back (all that buy).
CONFIRMED_SHARE = common.CONFIRMED_SHARE


def _networks(country: str, ahead: int | None = None) -> tuple[str, ...]:
    """The carriers' networks of a country (and time zone), from :mod:`.demo`."""
    found: list[str] = []
    for code, _, hours, prefixes in agents.COUNTRIES:
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
    phone: str = ""


class _Plan:
    """Draws the send, the receipts, the clicks and the conversions of the
    prepared campaign, and writes them."""

    def __init__(self, campaign: Campaign, sent_at: dt.datetime, now: dt.datetime, rng: random.Random) -> None:
        self.campaign = campaign
        self.link_id = campaign.links[0].id
        self.send_us = sampling.micros(sent_at)
        self.now_us = sampling.micros(now)
        self.end_us = min(self.send_us + int(common.HORIZON.total_seconds() * 1e6), self.now_us)
        #: Each message's generators are seeded from this.
        self.base = rng.getrandbits(64)
        self.rng = rng
        #: Ids and MessageSids are fresh on every run (the same seed must not
        #: collide with an earlier demo); everything else follows the seed.
        self.id_rng = random.Random(secrets.randbits(128))

        humans = [(w, classify_agent(ua), ref) for w, ua, ref in agents.HUMAN_AGENTS]
        self.phones = weighted((agent, w) for w, agent, ref in humans if ref is None and agent.device_type == "mobile")
        self.computers = {
            "iOS": weighted((agent, w) for w, agent, _ in humans if agent.os == "Mac OS X"),
            "Android": weighted((agent, w) for w, agent, _ in humans if agent.os == "Windows"),
        }
        self.anyone = weighted(((agent, ref), w) for w, agent, ref in humans)
        self.preview = classify_agent(agents.PREVIEW_AGENTS[0][1])  # Messages on an iPhone
        self.networks = {ahead: _networks("US", ahead) for _, _, ahead in AREAS}
        self.forward_countries = weighted(((code, _networks(code)), share) for code, share in FORWARD_COUNTRIES)
        self.zones = {area: ahead for area, _, ahead in AREAS}

        self.receipts: list[dict[str, Any]] = []
        self.clicks: list[dict[str, Any]] = []
        #: (conversion row, the click it follows).
        self.conversions: list[tuple[dict[str, Any], dict[str, Any]]] = []
        #: (message, when its recipient replied STOP in microseconds).
        self.stops: list[tuple[_Message, int]] = []

    # -- drawing ------------------------------------------------------------

    def _messages(self) -> list[_Message]:
        """The campaign's messages in the order they were sent (the import
        order), a steady stream over :data:`SEND_SECONDS`."""
        r = Recipient.__table__.c
        rows = get_state().db.session.execute(
            # Prepared messages only: a number on the opt-out list is not sent.
            select(r.id, r.phone, r.variant_id)
            .where(r.campaign_id == self.campaign.id, r.status == "ready")
            .order_by(r.id)
        ).all()
        step = SEND_SECONDS * 1e6 / max(len(rows), 1)
        return [
            _Message(rid, variant_id, self.zones[phone[2:5]], self.send_us + int((i + self.rng.random()) * step), phone)
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
                # A generator of its own, so the other draws stay as they were.
                stop = random.Random(f"{self.base}:{name}:{rank}:stop")
                if statuses[rank] == "delivered" and stop.random() < OPT_OUT_SHARES[name]:
                    at = message.sent_us + int(min(stop.lognormvariate(math.log(1200), 1.0), 86_400) * 1e6)
                    if at <= self.now_us:
                        self.stops.append((message, at))

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
        phone = pick(fate, *self.phones)
        error = pick(fate, *weighted(_ERROR_CODES)) if status == "undelivered" else None
        preview = status == "delivered" and phone.os == "iOS" and fate.random() < PREVIEW_SHARE
        if clicks:
            device = pick(fate, *self.computers[phone.os]) if fate.random() < DESKTOP_SHARE else phone
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
                other, referrer = pick(fate, *self.anyone)
                while (other.device_type, other.os, other.browser) == (device.device_type, device.os, device.browser):
                    other, referrer = pick(fate, *self.anyone)
                country, networks = pick(fate, *self.forward_countries)
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
                "r_sent_at": sampling.from_micros(m.sent_us), "r_status_at": sampling.from_micros(status_us),
                "r_error": error,
            }
        )
        ip = sampling.carrier_ip(when, self.networks[m.ahead])
        if preview:
            at = status_us + int(when.uniform(0.5, 4) * 1e6)
            self._click(m, at, "preview", self.preview, country="US", ip=ip)
        if not clicks:
            return
        arrived_us = status_us if status == "delivered" else m.sent_us + 5_000_000
        if device is not phone:
            ip = sampling.carrier_ip(when, self.networks[m.ahead])  # the home network
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
                ip=sampling.carrier_ip(when, networks), referrer_host=referrer,
            )
        if order is not None:
            if when.random() < 0.85:
                delay_s = when.lognormvariate(math.log(12 * 60), 1.3)
            else:
                delay_s = when.lognormvariate(math.log(10 * 3600), 0.8)
            at = converts_on["_us"] + int(min(max(delay_s, 30.0), 2 * 86400.0) * 1e6)
            order["created_at"] = sampling.from_micros(min(at, self.now_us))
            self.conversions.append((order, converts_on))

    def _human_time(self, when: random.Random, arrived_us: int, ahead: int) -> int:
        """A first click after the message arrived: most in the first hours,
        a tail over the week, fewer at night in the recipient's zone."""
        peak = max(agents.DAILY_RHYTHM)
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
            hour = (common.SEND_HOUR + ahead + (at - self.send_us) // 3_600_000_000) % 24
            if when.random() * peak < agents.DAILY_RHYTHM[hour]:
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
            common.demo_click_id(micros, self.id_rng.getrandbits(96).to_bytes(12, "big")),
            sampling.from_micros(micros), self.link_id, self.campaign.id, kind, agent,
            recipient_id=m.recipient_id, variant_id=m.variant_id, **fields,
        )
        row["_us"] = micros
        self.clicks.append(row)
        return row

    @staticmethod
    def _order(fate: random.Random) -> dict[str, Any]:
        cents = 0
        while not 1900 <= cents <= 18000:
            cents = int(fate.lognormvariate(math.log(4500), 0.55))
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
        for start in range(0, len(self.receipts), common.BATCH_SIZE):
            connection.execute(receipt, self.receipts[start:start + common.BATCH_SIZE])

        self.clicks.sort(key=lambda row: row["_us"])
        rows = [{k: v for k, v in row.items() if k != "_us"} for row in self.clicks]
        clicks = Click.__table__
        for start in range(0, len(rows), common.BATCH_SIZE):
            session.execute(insert(clicks), rows[start:start + common.BATCH_SIZE])

        if self.conversions:
            self.conversions.sort(key=lambda pair: pair[0]["created_at"])
            wanted = [click["click_id"] for _, click in self.conversions]
            pks: dict[str, int] = {}
            for start in range(0, len(wanted), common.BATCH_SIZE):
                pks.update(
                    session.execute(
                        select(clicks.c.click_id, clicks.c.id).where(
                            clicks.c.click_id.in_(wanted[start:start + common.BATCH_SIZE])
                        )
                    ).all()
                )
            prefix = common.order_prefix(self.campaign.id)
            values = []
            for seq, (order, click) in enumerate(self.conversions, 1):
                values.append(
                    {
                        **order,
                        "owner_id": self.campaign.owner_id or "",
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
        self._write_stops(session)
        session.commit()

    def _write_stops(self, session) -> None:
        """The STOP replies, as the inbound webhook stores them: the number
        on the owner's list (hash and last two digits) and an opt-out event
        of the message it answered."""
        if not self.stops:
            return
        owner = self.campaign.owner_id or EVERY_OWNER
        digest = phone_hasher()
        events = []
        for message, at in self.stops:
            events.append({
                "owner_id": owner, "phone_hash": digest(message.phone), "phone_tail": phone_tail(message.phone),
                "action": "opt_out", "source": "reply", "keyword": "STOP", "campaign_id": self.campaign.id,
                "variant_id": message.variant_id, "recipient_id": message.recipient_id,
                "external_id": f"SM{self.id_rng.getrandbits(128):032x}", "created_at": sampling.from_micros(at),
            })
        session.execute(insert(OptOutEvent.__table__), events)
        table = Suppression.__table__
        listed = dialect_insert(session.get_bind().dialect.name)(table).on_conflict_do_nothing(
            index_elements=[table.c.owner_id, table.c.phone_hash]
        )
        session.execute(listed, [
            {k: e[k] for k in ("owner_id", "phone_hash", "phone_tail", "source", "keyword", "created_at")}
            for e in events
        ])
