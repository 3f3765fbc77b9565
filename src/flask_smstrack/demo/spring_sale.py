"""A demo campaign full of realistic synthetic data, so that a new install
shows a complete dashboard at once (``flask smstrack demo``).

The data is what real traffic stores:

- user agents are real strings run through
  :func:`~.classify.classify_agent`, so device, OS and browser names are the
  ones real clicks get; IPs are anonymized with
  :func:`~.classify.anonymize_ip` and belong to carriers of the country the
  click is counted in;
- click ids have the format of :func:`~.tracking.new_click_id`, with the
  click's own time in their first 48 bits;
- a returning visitor's click carries the click id of their first click in
  ``visitor_id`` and is not a first click, as the redirect records it.

Clicks follow a send at 10:00 on a Tuesday in New York: link previews
within seconds of delivery, most human clicks in the first hours, a tail over
the week, fewer clicks at night in each visitor's own time zone. They are
drawn in time order, one batch at a time (the sorted sample is built
incrementally), and written with bulk Core inserts, one transaction per
batch: a million clicks take no more memory than a few thousand.

The same seed gives the same data, relative to the send time, in any week.
Ids, short codes and order ids are new on every run, so the demo can be
created any number of times in one database.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import random
import secrets
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate
from typing import Any

from sqlalchemy import delete, insert, select

from ..manage import create_campaign, create_link
from ..models import Campaign, Click, Conversion, Link, utcnow
from ..reports.rollups import reset as reset_rollups
from ..schemas import CampaignSchema, LinkSchema
from ..state import get_state
from ..tracking.classify import Agent, classify_agent
from ..tracking.clicks import click_row
from .agents import BOT_AGENTS, COUNTRIES, DAILY_RHYTHM, HUMAN_AGENTS, PREVIEW_AGENTS
from .common import (
    BATCH_SIZE,
    CONFIRMED_SHARE,
    HORIZON,
    SEND_HOUR,
    SHOP,
    demo_click_id,
    demo_send_time,
    mark_sent,
    order_prefix,
    remove_unfinished,
)
from .sampling import bucket_edges, carrier_ip, exponential_cdf, from_micros, lognormal_cdf, micros, mixture

logger = logging.getLogger("flask_smstrack")


#: The name of the demo campaign.
DEMO_NAME = "Demo: Spring sale"


#: Shares of all clicks.
PREVIEW_SHARE = 0.08


BOT_SHARE = 0.03


#: Share of human clicks that are a visitor's second click.
REPEAT_SHARE = 0.12


#: Chance that a confirmed first click, or a confirmed return, buys.
#: Together about 3% of unique clicks convert (SMS offers see 1-8%).
CONVERT_FIRST = 0.045


CONVERT_REPEAT = 0.08


#: Messages sent per click made: about 11% of the messages get a unique
#: click (SMS campaigns see 5-20%).
SENT_PER_CLICK = 7


#: What one message costs, all in (the provider's price for its two
#: segments, carrier fees and the SMS platform's share), in USD.
COST_PER_MESSAGE = "0.0300"


#: Median order value, in cents.
MEDIAN_ORDER_CENTS = 4500


#: (path, utm_content, share of human clicks, share of link previews).
_LINKS = (
    ("/spring", "hero", 0.68, 0.90),
    ("/spring/shoes", "shoes", 0.24, 0.07),
    ("/faq", "faq", 0.08, 0.03),
)


_MESSAGE = (
    "Acme: our Spring sale is on! 25% off everything until Sunday {0} "
    "New running shoes {1} Questions? {2} Reply STOP to opt out"
)


def demo_sent(clicks: int) -> int:
    """The messages the demo says were sent for ``clicks`` clicks, in thousands."""
    return max(1000, round(clicks * SENT_PER_CLICK, -3))


def create_demo_campaign(
    *,
    clicks: int = 6000,
    owner_id: str | None = None,
    seed: int | str | None = None,
    now: dt.datetime | None = None,
    progress: Callable[[int], Any] | None = None,
    batch_size: int = BATCH_SIZE,
) -> Campaign:
    """Create the demo campaign, its three links, ``clicks`` clicks and their
    conversions, plus a few unattributed conversions.

    ``progress`` is called with the number of clicks written after each
    batch. When anything fails (or the command is interrupted), what was
    written is removed again and the error is raised.
    """
    if clicks < 1:
        raise ValueError("clicks must be at least 1")
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    rng = random.Random(seed)
    db = get_state().db
    sent_at = demo_send_time(now)
    campaign = create_campaign(
        CampaignSchema().load(
            {
                "name": DEMO_NAME,
                "currency": "USD",
                "cost_per_message": COST_PER_MESSAGE,
                "sent": demo_sent(clicks),
            }
        ),
        owner_id,
    )
    try:
        links = []
        for path, content, _, _ in _LINKS:
            data = LinkSchema().load(
                {
                    "destination_url": SHOP + path,
                    "utm": {
                        "utm_source": "sms",
                        "utm_medium": "sms",
                        "utm_campaign": "spring-sale",
                        "utm_content": content,
                    },
                }
            )
            links.append(create_link(campaign, data))
        campaign.message_template = _MESSAGE.format(*(f"/s/{link.code}" for link in links))
        db.session.commit()

        plan = _Plan(campaign.id, [link.id for link in links], sent_at, now, rng)
        clicks_table, conversions_table = Click.__table__, Conversion.__table__
        for click_rows, conversion_rows in plan.batches(clicks, batch_size):
            db.session.execute(insert(clicks_table), click_rows)
            if conversion_rows:
                wanted = [row["reported_click_id"] for row in conversion_rows]
                pks = dict(
                    db.session.execute(
                        select(clicks_table.c.click_id, clicks_table.c.id).where(
                            clicks_table.c.click_id.in_(wanted)
                        )
                    ).all()
                )
                for row in conversion_rows:
                    row["click_pk"] = pks[row["reported_click_id"]]
                    row["owner_id"] = campaign.owner_id or ""
                db.session.execute(insert(conversions_table), conversion_rows)
            db.session.commit()
            if progress is not None:
                progress(len(click_rows))
        db.session.execute(insert(conversions_table), plan.unattributed(clicks))
        mark_sent(campaign, sent_at)
    except BaseException:
        remove_unfinished(campaign.id, _remove)
        raise
    return campaign


def _remove(campaign_id: int) -> None:
    """Delete a half-made demo campaign and everything written for it.

    Explicit deletes: SQLite does not enforce the foreign keys' cascades
    (and may give the campaign's id to the next campaign)."""
    db = get_state().db
    db.session.rollback()
    conversions = Conversion.__table__
    db.session.execute(
        delete(conversions).where(
            (conversions.c.campaign_id == campaign_id)
            | conversions.c.order_id.like(f"{order_prefix(campaign_id)}%")
        )
    )
    db.session.execute(delete(Click.__table__).where(Click.__table__.c.campaign_id == campaign_id))
    db.session.execute(delete(Link.__table__).where(Link.__table__.c.campaign_id == campaign_id))
    db.session.execute(delete(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id))
    db.session.commit()
    reset_rollups(campaign_id)


#: Delays after the send, as cumulative distributions in seconds.
#: Previews: as the messages arrive (the send takes a few minutes), and
#: later for phones that were off.
_PREVIEW_DELAY = mixture((0.9, lognormal_cdf(45, 0.7)), (0.1, lognormal_cdf(2 * 3600, 1.5)))


#: Bots: link scanners at delivery, then crawlers at any time.
_BOT_DELAY = mixture((0.5, lognormal_cdf(90, 1.0)), (0.5, lambda t: t / HORIZON.total_seconds()))


#: Humans: the first hour, the rest of the day, the rest of the week (then
#: shaped by the time of day).
_HUMAN_DELAY = mixture(
    (0.50, lognormal_cdf(20 * 60, 1.2)),
    (0.35, lognormal_cdf(5 * 3600, 1.0)),
    (0.15, exponential_cdf(2.5 * 86400)),
)


@dataclass(frozen=True, slots=True)
class _Visitor:
    click_id: str
    link_id: int
    agent: Agent
    country: str
    ip: str | None
    converted: bool


class _Plan:
    """Draws the demo's clicks in time order, one batch at a time."""

    POOL_SIZE = 4000

    def __init__(self, campaign_id: int, link_ids: list[int], sent_at: dt.datetime, now: dt.datetime, rng: random.Random) -> None:
        self.campaign_id = campaign_id
        self.link_ids = link_ids
        self.rng = rng
        #: Ids are fresh on every run (the same seed must not collide with
        #: an earlier demo); everything else follows the seed.
        self.id_rng = random.Random(secrets.randbits(128))
        self.sent_us = micros(sent_at)
        horizon_s = min(HORIZON.total_seconds(), (now - sent_at).total_seconds())
        self.now_us = micros(now)
        self.order_seq = 0

        self.humans = [(w, classify_agent(ua), ref) for w, ua, ref in HUMAN_AGENTS]
        self.human_cum = list(accumulate(w for w, _, _ in HUMAN_AGENTS))
        self.previews = [classify_agent(ua) for _, ua in PREVIEW_AGENTS]
        self.preview_cum = list(accumulate(w for w, _ in PREVIEW_AGENTS))
        self.bots = [(classify_agent(ua), prefix, country) for _, ua, prefix, country in BOT_AGENTS]
        self.bot_cum = list(accumulate(w for w, *_ in BOT_AGENTS))
        self.human_link_cum = list(accumulate(share for _, _, share, _ in _LINKS))
        self.preview_link_cum = list(accumulate(share for _, _, _, share in _LINKS))
        self.country_cum = list(accumulate(share for _, share, _, _ in COUNTRIES))

        # Per hour after the send: how the countries' shares of human clicks
        # shift with their time of day, and the overall rate.
        hours = int(horizon_s // 3600) + 1
        self.hour_country_cum: list[list[float]] = []
        hour_rate = []
        for h in range(hours):
            weights = [
                share * DAILY_RHYTHM[(SEND_HOUR + h + ahead) % 24]
                for _, share, ahead, _ in COUNTRIES
            ]
            self.hour_country_cum.append(list(accumulate(weights)))
            hour_rate.append(sum(weights))

        # The mass of each kind in each time bucket, and the running total.
        self.edges = edges = bucket_edges(horizon_s)
        kinds = []
        for cdf, share, shaped in (
            (_PREVIEW_DELAY, PREVIEW_SHARE, False),
            (_BOT_DELAY, BOT_SHARE, False),
            (_HUMAN_DELAY, 1 - PREVIEW_SHARE - BOT_SHARE, True),
        ):
            cdfs = [cdf(t) for t in edges]
            mass = [b - a for a, b in zip(cdfs, cdfs[1:])]
            if shaped:
                mass = [m * hour_rate[int(a // 3600)] for m, a in zip(mass, edges)]
            total = sum(mass)
            kinds.append([m * share / total for m in mass])
        self.preview_mass, self.bot_mass, self.human_mass = kinds
        self.mass = [p + b + h for p, b, h in zip(*kinds)]
        self.cum = list(accumulate(self.mass))
        self.pool: list[_Visitor] = []

    # -- helpers ---------------------------------------------------------

    def _pick(self, cum: list[float]) -> int:
        return bisect_right(cum, self.rng.random() * cum[-1])

    def _sorted_uniforms(self, n: int) -> Iterator[float]:
        """``n`` uniform draws in ascending order, one at a time: the gaps
        between order statistics, accumulated in log space."""
        log_rest = 0.0
        expovariate = self.rng.expovariate
        for i in range(n):
            log_rest -= expovariate(1.0) / (n - i)
            yield -math.expm1(log_rest)

    def _new_id(self, micros: int) -> str:
        return demo_click_id(micros, self.id_rng.getrandbits(96).to_bytes(12, "big"))

    def _ip(self, prefixes: tuple[str, ...]) -> str | None:
        return carrier_ip(self.rng, prefixes)

    def _row(self, click_id: str, micros: int, link_id: int, kind: str, agent: Agent, **fields) -> dict[str, Any]:
        return click_row(click_id, from_micros(micros), link_id, self.campaign_id, kind, agent, **fields)

    def _conversion(self, click: dict[str, Any], micros: int) -> dict[str, Any]:
        rng = self.rng
        # Minutes after the click for most; the next day for some.
        if rng.random() < 0.85:
            delay_s = rng.lognormvariate(math.log(12 * 60), 1.3)
        else:
            delay_s = rng.lognormvariate(math.log(10 * 3600), 0.8)
        delay_s = min(max(delay_s, 30.0), 2 * 86400.0)
        row = self._order(min(micros + int(delay_s * 1e6), self.now_us))
        row.update(
            campaign_id=self.campaign_id,
            link_id=click["link_id"],
            reported_click_id=click["click_id"],
        )
        return row

    def _order(self, micros: int) -> dict[str, Any]:
        rng = self.rng
        self.order_seq += 1
        cents = 0
        while not 1900 <= cents <= 18000:
            cents = int(rng.lognormvariate(math.log(MEDIAN_ORDER_CENTS), 0.55))
        server = rng.random() < 0.15
        return {
            "created_at": from_micros(micros),
            "click_pk": None,
            "reported_click_id": None,
            "campaign_id": None,
            "link_id": None,
            "recipient_id": None,
            "variant_id": None,
            "event": "purchase",
            "revenue": Decimal(cents).scaleb(-2),
            "currency": "USD",
            "order_id": f"{order_prefix(self.campaign_id)}{1000 + self.order_seq}",
            "source": "server" if server else "snippet",
            "trust": "verified" if server else "unverified",
        }

    # -- the clicks ------------------------------------------------------

    def _click(self, micros: int, kind: str, hour: int, conversions: list[dict[str, Any]]) -> dict[str, Any]:
        rng = self.rng
        if kind == "preview":
            agent = self.previews[self._pick(self.preview_cum)]
            country = COUNTRIES[self._pick(self.country_cum)]
            return self._row(
                self._new_id(micros), micros, self.link_ids[self._pick(self.preview_link_cum)], kind, agent,
                country=country[0], ip=self._ip(country[3]),
            )
        if kind == "bot":
            agent, prefix, country_code = self.bots[self._pick(self.bot_cum)]
            return self._row(
                self._new_id(micros), micros, self.link_ids[rng.randrange(len(self.link_ids))], kind, agent,
                country=country_code, ip=self._ip((prefix,)),
            )
        pool = self.pool
        confirmed = rng.random() < CONFIRMED_SHARE
        if pool and rng.random() < REPEAT_SHARE:
            # A visitor comes back: same browser, same network, same link.
            i = rng.randrange(len(pool))
            visitor = pool[i]
            pool[i] = pool[-1]
            pool.pop()
            row = self._row(
                self._new_id(micros), micros, visitor.link_id, kind, visitor.agent,
                human_confirmed=confirmed, visitor_id=visitor.click_id,
                country=visitor.country, ip=visitor.ip,
            )
            if confirmed and not visitor.converted and rng.random() < CONVERT_REPEAT:
                conversions.append(self._conversion(row, micros))
            return row
        _, agent, referrer = self.humans[self._pick(self.human_cum)]
        country = COUNTRIES[self._pick(self.hour_country_cum[hour])]
        row = self._row(
            self._new_id(micros), micros, self.link_ids[self._pick(self.human_link_cum)], kind, agent,
            is_first=True, human_confirmed=confirmed, country=country[0],
            ip=self._ip(country[3]), referrer_host=referrer,
        )
        converted = confirmed and rng.random() < CONVERT_FIRST
        if converted:
            conversions.append(self._conversion(row, micros))
        visitor = _Visitor(row["click_id"], row["link_id"], agent, row["country"], row["ip"], converted)
        if len(pool) < self.POOL_SIZE:
            pool.append(visitor)
        else:
            pool[rng.randrange(self.POOL_SIZE)] = visitor
        return row

    def batches(self, n: int, size: int) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
        """The ``n`` clicks in time order, ``size`` at a time, each batch with
        the conversions of its clicks."""
        rng, edges, mass, cum = self.rng, self.edges, self.mass, self.cum
        total = cum[-1]
        bucket = 0
        last_us = self.sent_us
        clicks: list[dict[str, Any]] = []
        conversions: list[dict[str, Any]] = []
        for u in self._sorted_uniforms(n):
            target = u * total
            while bucket < len(cum) - 1 and cum[bucket] < target:
                bucket += 1
            start, end = edges[bucket], edges[bucket + 1]
            within = (target - (cum[bucket] - mass[bucket])) / mass[bucket] if mass[bucket] else 0.5
            seconds = start + min(max(within, 0.0), 1.0) * (end - start)
            # Never out of order, never two clicks in the same microsecond.
            micros = last_us = max(self.sent_us + int(seconds * 1e6), last_us + 1)
            pick = rng.random() * mass[bucket]
            if pick < self.preview_mass[bucket]:
                kind = "preview"
            elif pick < self.preview_mass[bucket] + self.bot_mass[bucket]:
                kind = "bot"
            else:
                kind = "human"
            clicks.append(self._click(micros, kind, min(int(seconds // 3600), len(self.hour_country_cum) - 1), conversions))
            if len(clicks) >= size:
                yield clicks, conversions
                clicks, conversions = [], []
        if clicks:
            yield clicks, conversions

    def unattributed(self, n_clicks: int) -> list[dict[str, Any]]:
        """A few conversions whose click id matches no click: a landing page
        opened from an old message, a shared link with the id cut off."""
        rows = []
        for _ in range(min(25, 2 + n_clicks // 1500)):
            micros = self.sent_us + int(self.rng.uniform(600, 2 * 86400) * 1e6)
            row = self._order(min(micros, self.now_us))
            row["reported_click_id"] = self._new_id(micros - int(self.rng.uniform(60, 3 * 86400) * 1e6))
            rows.append(row)
        return rows
