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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, insert, select

from ..manage import create_campaign, create_link
from ..models import Campaign, Click, Conversion, Link, User, utcnow
from ..reports.rollups import reset as reset_rollups
from ..schemas import CampaignSchema, LinkSchema
from ..state import get_state
from ..tracking.classify import Agent, anonymize_ip, classify_agent
from ..tracking.clicks import click_id_at, click_row

logger = logging.getLogger("flask_smstrack")

#: The name of the demo campaign.
DEMO_NAME = "Demo: Spring sale"
#: Rows per insert and per transaction.
BATCH_SIZE = 5000
#: Clicks keep coming for this long after the send.
HORIZON = dt.timedelta(days=7)

#: Shares of all clicks.
PREVIEW_SHARE = 0.08
BOT_SHARE = 0.03
#: Share of human clicks that are a visitor's second click.
REPEAT_SHARE = 0.12
#: Share of human clicks whose landing page reported back.
CONFIRMED_SHARE = 0.60
#: Chance that a confirmed first click, or a confirmed return, buys.
#: Together about 5% of unique clicks convert.
CONVERT_FIRST = 0.07
CONVERT_REPEAT = 0.12

#: The sender's clock: the send is at 10:00 there.
_SENDER_ZONE = "America/New_York"
_SEND_HOUR = 10

#: (path, utm_content, share of human clicks, share of link previews).
_LINKS = (
    ("/spring", "hero", 0.68, 0.90),
    ("/spring/shoes", "shoes", 0.24, 0.07),
    ("/faq", "faq", 0.08, 0.03),
)
_SHOP = "https://shop.example.com"
_MESSAGE = (
    "Acme: our Spring sale is on! 25% off everything until Sunday {0} "
    "New running shoes {1} Questions? {2} Reply STOP to opt out"
)

#: Human visitors: (weight, user agent, referrer host). Referrers are empty
#: for SMS, except in the in-app browsers of apps where the link was shared.
_HUMAN_AGENTS: tuple[tuple[float, str, str | None], ...] = (
    # iPhone: about 48%.
    (20, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", None),
    (11, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1", None),
    (6, "Mozilla/5.0 (iPhone; CPU iPhone OS 16_7_8 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1", None),
    (4, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1", None),
    (3, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.153 Mobile/15E148 Safari/604.1", None),
    (2, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 337.0.3.23.54 (iPhone15,2; iOS 17_5_1; en_US; en; scale=3.00; 1179x2556; 614078409)", "l.instagram.com"),
    (1, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.44.108;FBBV/615113476;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/618181722]", "m.facebook.com"),
    (1, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) GSA/323.0.647062479 Mobile/15E148 Safari/604.1", None),
    # Android phones: about 27%.
    (11, "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36", None),
    (5, "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36", None),
    (3, "Mozilla/5.0 (Linux; Android 13; SM-A536U) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.165 Mobile Safari/537.36", None),
    (6, "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36", None),
    (1, "Mozilla/5.0 (Android 14; Mobile; rv:127.0) Gecko/127.0 Firefox/127.0", None),
    (1, "Mozilla/5.0 (Linux; Android 14; SM-G991U Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.134 Mobile Safari/537.36 Instagram 337.0.0.35.102 Android (34/14; 420dpi; 1080x2181; samsung; SM-G991U; o1q; qcom; en_US; 614212155)", "l.instagram.com"),
    # Tablets: about 5%.
    (3.5, "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", None),
    (1.5, "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", None),
    # Desktops (Messages on a Mac, Google Messages for web): about 20%.
    (7, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", None),
    (5, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", None),
    (3.5, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", None),
    (3, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0", None),
    (1.5, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0", None),
)

#: Link-preview fetchers: (weight, user agent). iMessage fetches the preview
#: from the recipient's phone as the message arrives.
_PREVIEW_AGENTS: tuple[tuple[float, str], ...] = (
    (85, "facebookexternalhit/1.1 Facebot Twitterbot/1.0"),
    (8, "WhatsApp/2.24.13.78 A"),
    (5, "WhatsApp/2.24.12.78 i"),
    (2, "TelegramBot (like TwitterBot)"),
)

#: Bots: (weight, user agent, IPv4 /16 or /24 it comes from, its country).
#: Carriers' and mail providers' link scanners, scripts, and crawlers.
_BOT_AGENTS: tuple[tuple[float, str, str, str], ...] = (
    (25, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.6478.126 Safari/537.36", "3.236", "US"),
    (15, "python-requests/2.32.3", "34.105", "US"),
    (15, "Go-http-client/1.1", "88.99", "DE"),
    (15, "", "54.36", "FR"),
    (10, "curl/8.7.1", "3.236", "US"),
    (10, "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.126 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "66.249.66", "US"),
    (5, "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "40.77.167", "US"),
    (5, "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "54.36.148", "FR"),
)

#: Recipients: (country, share, hours ahead of the sender's clock, network
#: prefixes of its carriers: IPv4 /16s, IPv6 /32s). Fixed differences, so the
#: same seed gives the same data in any week of the year.
_COUNTRIES: tuple[tuple[str, float, int, tuple[str, ...]], ...] = (
    ("US", 0.38, 0, ("172.56", "174.205", "166.198", "73.92", "107.77", "99.203", "2607:fb90")),
    ("US", 0.14, -1, ("172.56", "174.205", "166.198", "107.77", "2607:fb90")),
    ("US", 0.12, -3, ("172.56", "174.205", "73.92", "99.203", "2607:fb90")),
    ("CA", 0.06, 0, ("99.224", "184.144", "142.198")),
    ("CA", 0.03, -3, ("70.66", "184.144")),
    ("GB", 0.08, 5, ("31.94", "86.140", "92.40", "2a01:4c8")),
    ("AU", 0.05, 15, ("1.144", "101.115", "49.181", "120.18")),
    ("DE", 0.04, 6, ("80.187", "84.140", "91.64", "2a01:598")),
    ("FR", 0.03, 6, ("90.40", "92.184", "37.171", "176.160")),
    ("IE", 0.02, 5, ("86.40", "89.101", "109.255")),
    ("NL", 0.02, 6, ("31.20", "77.160", "145.53")),
    ("NZ", 0.015, 17, ("115.189", "118.148")),
    ("MX", 0.015, -1, ("189.203", "201.141")),
)

#: Relative click rate by local hour, 0:00 to 23:00.
_DAILY_RHYTHM = (
    0.25, 0.12, 0.07, 0.05, 0.05, 0.08, 0.20, 0.45, 0.70, 0.85, 0.95, 1.00,
    1.05, 1.00, 0.95, 0.95, 0.95, 1.00, 1.10, 1.20, 1.20, 1.05, 0.80, 0.50,
)


def _sender_zone() -> dt.tzinfo:
    try:
        return ZoneInfo(_SENDER_ZONE)
    except ZoneInfoNotFoundError:  # no zone database (Windows without tzdata)
        return dt.timezone(dt.timedelta(hours=-4))


def demo_send_time(now: dt.datetime | None = None) -> dt.datetime:
    """When the demo campaign was sent: 10:00 on a Tuesday in New York, the
    latest one at least a week before ``now``, so its week of clicks is over.
    Returned in UTC."""
    now = now or utcnow()
    zone = _sender_zone()
    latest = (now - HORIZON).astimezone(zone)
    day = latest.date() - dt.timedelta(days=(latest.weekday() - 1) % 7)
    sent = dt.datetime(day.year, day.month, day.day, _SEND_HOUR, tzinfo=zone)
    if sent > latest:
        sent -= dt.timedelta(days=7)
    return sent.astimezone(dt.timezone.utc)


def default_owner_id() -> str | None:
    """The owner of a demo campaign when none is given: the first admin."""
    db = get_state().db
    admin = db.session.execute(
        select(User.id).where(User.is_admin.is_(True)).order_by(User.id).limit(1)
    ).scalar()
    return None if admin is None else str(admin)


def demo_click_id(micros: int, random_bytes: bytes) -> str:
    """A click id in the format of :func:`~.tracking.new_click_id`, for a
    click at ``micros`` microseconds after the epoch."""
    return click_id_at(micros // 1000, random_bytes)


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
                "cost_per_message": "0.0079",
                "sent": 20000,
            }
        ),
        owner_id,
    )
    try:
        links = []
        for path, content, _, _ in _LINKS:
            data = LinkSchema().load(
                {
                    "destination_url": _SHOP + path,
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


def mark_sent(campaign: Campaign, sent_at: dt.datetime) -> None:
    """Mark a demo campaign sent, only now that its data is complete: a
    report that ran meanwhile saw a draft. The rows were written after their
    time, like replayed clicks: rollups a report made meanwhile are rebuilt."""
    campaign.sent_at = sent_at
    campaign.status = "sent"
    get_state().db.session.commit()
    reset_rollups(campaign.id)


def remove_unfinished(campaign_id: int, remove: Callable[[int], None]) -> None:
    """Remove what a failed or interrupted demo wrote, with ``remove``."""
    try:
        remove(campaign_id)
    except Exception:
        logger.exception("Could not remove the unfinished demo campaign %s", campaign_id)


def carrier_ip(rng: random.Random, prefixes: tuple[str, ...]) -> str | None:
    """An anonymized address in one of a carrier's networks."""
    prefix = prefixes[rng.randrange(len(prefixes))]
    if ":" in prefix:
        ip = f"{prefix}:{rng.randrange(65536):x}:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}"
    elif prefix.count(".") == 2:
        ip = f"{prefix}.{rng.randrange(1, 255)}"
    else:
        ip = f"{prefix}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return anonymize_ip(ip)


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
            | conversions.c.order_id.like(f"{_order_prefix(campaign_id)}%")
        )
    )
    db.session.execute(delete(Click.__table__).where(Click.__table__.c.campaign_id == campaign_id))
    db.session.execute(delete(Link.__table__).where(Link.__table__.c.campaign_id == campaign_id))
    db.session.execute(delete(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id))
    db.session.commit()
    reset_rollups(campaign_id)


def _order_prefix(campaign_id: int) -> str:
    return f"DEMO-{campaign_id}-"


# -- the model of the traffic ----------------------------------------------


def _lognormal_cdf(median_s: float, sigma: float) -> Callable[[float], float]:
    mu, scale = math.log(median_s), sigma * math.sqrt(2)
    return lambda t: 0.5 * (1 + math.erf((math.log(t) - mu) / scale)) if t > 0 else 0.0


def _exponential_cdf(mean_s: float) -> Callable[[float], float]:
    return lambda t: 1 - math.exp(-t / mean_s) if t > 0 else 0.0


def _mixture(*parts: tuple[float, Callable[[float], float]]) -> Callable[[float], float]:
    return lambda t: sum(w * cdf(t) for w, cdf in parts)


#: Delays after the send, as cumulative distributions in seconds.
#: Previews: as the messages arrive (the send takes a few minutes), and
#: later for phones that were off.
_PREVIEW_DELAY = _mixture((0.9, _lognormal_cdf(45, 0.7)), (0.1, _lognormal_cdf(2 * 3600, 1.5)))
#: Bots: link scanners at delivery, then crawlers at any time.
_BOT_DELAY = _mixture((0.5, _lognormal_cdf(90, 1.0)), (0.5, lambda t: t / HORIZON.total_seconds()))
#: Humans: the first hour, the rest of the day, the rest of the week (then
#: shaped by the time of day).
_HUMAN_DELAY = _mixture(
    (0.50, _lognormal_cdf(20 * 60, 1.2)),
    (0.35, _lognormal_cdf(5 * 3600, 1.0)),
    (0.15, _exponential_cdf(2.5 * 86400)),
)


def _bucket_edges(horizon_s: float) -> list[float]:
    """Time buckets after the send: 1 s wide for 10 minutes, 10 s until
    3 hours, then 1 minute."""
    edges = [float(s) for s in range(1, 600)]
    edges += [float(s) for s in range(600, 10_800, 10)]
    edges += [float(s) for s in range(10_800, int(horizon_s), 60)]
    edges.append(horizon_s)
    return edges


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
        self.sent_us = _micros(sent_at)
        horizon_s = min(HORIZON.total_seconds(), (now - sent_at).total_seconds())
        self.now_us = _micros(now)
        self.order_seq = 0

        self.humans = [(w, classify_agent(ua), ref) for w, ua, ref in _HUMAN_AGENTS]
        self.human_cum = list(accumulate(w for w, _, _ in _HUMAN_AGENTS))
        self.previews = [classify_agent(ua) for _, ua in _PREVIEW_AGENTS]
        self.preview_cum = list(accumulate(w for w, _ in _PREVIEW_AGENTS))
        self.bots = [(classify_agent(ua), prefix, country) for _, ua, prefix, country in _BOT_AGENTS]
        self.bot_cum = list(accumulate(w for w, *_ in _BOT_AGENTS))
        self.human_link_cum = list(accumulate(share for _, _, share, _ in _LINKS))
        self.preview_link_cum = list(accumulate(share for _, _, _, share in _LINKS))
        self.country_cum = list(accumulate(share for _, share, _, _ in _COUNTRIES))

        # Per hour after the send: how the countries' shares of human clicks
        # shift with their time of day, and the overall rate.
        hours = int(horizon_s // 3600) + 1
        self.hour_country_cum: list[list[float]] = []
        hour_rate = []
        for h in range(hours):
            weights = [
                share * _DAILY_RHYTHM[(_SEND_HOUR + h + ahead) % 24]
                for _, share, ahead, _ in _COUNTRIES
            ]
            self.hour_country_cum.append(list(accumulate(weights)))
            hour_rate.append(sum(weights))

        # The mass of each kind in each time bucket, and the running total.
        self.edges = edges = _bucket_edges(horizon_s)
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
        return click_row(click_id, _from_micros(micros), link_id, self.campaign_id, kind, agent, **fields)

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
            cents = int(rng.lognormvariate(math.log(5500), 0.55))
        server = rng.random() < 0.15
        return {
            "created_at": _from_micros(micros),
            "click_pk": None,
            "reported_click_id": None,
            "campaign_id": None,
            "link_id": None,
            "recipient_id": None,
            "variant_id": None,
            "event": "purchase",
            "revenue": Decimal(cents).scaleb(-2),
            "currency": "USD",
            "order_id": f"{_order_prefix(self.campaign_id)}{1000 + self.order_seq}",
            "source": "server" if server else "snippet",
            "trust": "verified" if server else "unverified",
        }

    # -- the clicks ------------------------------------------------------

    def _click(self, micros: int, kind: str, hour: int, conversions: list[dict[str, Any]]) -> dict[str, Any]:
        rng = self.rng
        if kind == "preview":
            agent = self.previews[self._pick(self.preview_cum)]
            country = _COUNTRIES[self._pick(self.country_cum)]
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
        country = _COUNTRIES[self._pick(self.hour_country_cum[hour])]
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


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _micros(moment: dt.datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(micros: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=micros)
