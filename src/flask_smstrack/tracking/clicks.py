"""Clicks on the redirect's side: click ids, finding a link, the destination
with its click id, and recording the click.

The click write sits on the redirect's hot path: it is one lean Core
``INSERT`` on a pooled connection, committed before the ``302`` leaves, with
no ORM unit of work. When it fails the click is appended to a spool file and
written later (:mod:`.spool`); the visitor is redirected
either way.
"""
from __future__ import annotations

import base64
import datetime as dt
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit

from flask import current_app
from sqlalchemy import bindparam, case, exists, func, insert, null, or_, select
from werkzeug.urls import iri_to_uri

from ..config import Keys
from ..models import Campaign, Click, Link, LinkDestination, utcnow
from ..schemas import CLICK_ID_RE
from ..state import get_state
from .classify import Agent, anonymize_ip, classify_agent
from .destinations import Destination, assign, load_destinations
from .hotdb import DatabaseUnavailable
from .spool import spool_click
from .writer import RECIPIENT_FIRST

logger = logging.getLogger("flask_smstrack")


_clicks = Click.__table__


_INSERT_CLICK = insert(_clicks)


def click_id_at(millis: int, random: bytes) -> str:
    """The click id of a click at ``millis`` (milliseconds since the epoch).

    48 bits of time, then the random bits, in base32hex: its alphabet is in
    ASCII order, so ids sort by time and the unique index grows at its
    right edge instead of touching a random page on every click.
    """
    return base64.b32hexencode(millis.to_bytes(6, "big") + random).decode().rstrip("=")


def click_id_millis(click_id: str) -> int:
    """The time part of a click id, in milliseconds since the epoch."""
    return int.from_bytes(base64.b32hexdecode(click_id[:10] + "=" * 6)[:6], "big")


def new_click_id() -> str:
    """A new click id: its time and 96 random bits (unguessable)."""
    return click_id_at(time.time_ns() // 1_000_000, secrets.token_bytes(12))


@dataclass(frozen=True, slots=True)
class CachedLink:
    """What the redirect needs to know about a link, kept in the link cache."""

    id: int
    campaign_id: int
    recipient_id: int | None
    variant_id: int | None
    #: The destination with its UTM parameters.
    destination: str
    append_click_id: bool
    #: The destination split around the click id's place, so the redirect
    #: only concatenates: ``before + click_id + after``.
    before: str
    after: str
    #: Ended links (disabled, or expired: ``expires_at`` is seconds since the
    #: epoch) send visitors to ``fallback`` and record no click.
    disabled: bool = False
    expires_at: float | None = None
    #: The campaign's ``fallback_url``.
    fallback: str | None = None
    #: A landing-page test's weighted destinations (:mod:`.destinations`);
    #: empty for a link that leads to its ``destination`` alone.
    destinations: tuple[Destination, ...] = ()

    def ended(self, now: float) -> bool:
        """Whether the link no longer leads to its destination at ``now``."""
        return self.disabled or (self.expires_at is not None and self.expires_at <= now)


def _split_url(url: str) -> tuple[str, list[str], str]:
    """``url`` as (everything before the query, query items, ``#fragment``)."""
    base, hash_, fragment = url.partition("#")
    path, _, query = base.partition("?")
    return path, [item for item in query.split("&") if item], hash_ + fragment


def _name(item: str) -> str:
    return unquote_plus(item.partition("=")[0])


def with_query(url: str, extra: dict[str, str]) -> str:
    """``url`` with ``extra`` added to its query. The URL's own parameters are
    kept as they are written, and win over ``extra``."""
    if not extra:
        return url
    path, items, fragment = _split_url(url)
    names = {_name(item) for item in items}
    items += [f"{quote_plus(k)}={quote_plus(v)}" for k, v in extra.items() if k not in names]
    return f"{path}?{'&'.join(items)}{fragment}"


def click_id_slot(url: str, param: str) -> tuple[str, str]:
    """Split ``url`` around the place of its click id parameter.

    A click id the destination already carries is replaced; the rest of the
    query is kept as written.
    """
    path, items, fragment = _split_url(url)
    items = [item for item in items if _name(item) != param]
    items.append(f"{quote_plus(param)}=")
    return f"{path}?{'&'.join(items)}", fragment


def destination_for(link: Link) -> str:
    """The link's destination with its UTM parameters applied."""
    return with_query(link.destination_url, dict(link.utm or {}))


_links = Link.__table__


_parents = _links.alias("parent")


_campaigns = Campaign.__table__


_disabled = func.coalesce(_parents.c.disabled, _links.c.disabled)
_expires_at = case((_parents.c.id.is_(None), _links.c.expires_at), else_=_parents.c.expires_at)
_FALLBACK = select(_campaigns.c.fallback_url).where(_campaigns.c.id == _links.c.campaign_id)
_destinations = LinkDestination.__table__


#: The link and, for a recipient's own link, its campaign link, which says
#: where both go now: one Core query, since recipients' links are mostly
#: clicked once and so are rarely in the cache.
_FIND_LINK = (
    select(
        func.coalesce(_links.c.parent_id, _links.c.id).label("id"),
        _links.c.campaign_id,
        _links.c.recipient_id,
        _links.c.variant_id,
        func.coalesce(_parents.c.destination_url, _links.c.destination_url).label("destination_url"),
        case((_parents.c.id.is_(None), _links.c.utm), else_=_parents.c.utm).label("utm"),
        func.coalesce(_parents.c.append_click_id, _links.c.append_click_id).label("append_click_id"),
        # Recipients' own links are ended with their campaign link.
        _disabled.label("disabled"),
        _expires_at.label("expires_at"),
        # The campaign's fallback is only read for a link that is or may
        # become ended: the others pay nothing for it.
        case(
            (or_(_disabled, _expires_at.is_not(None)), _FALLBACK.scalar_subquery()), else_=null()
        ).label("fallback_url"),
        # Destinations are read by a second query only for a link that has some.
        exists()
        .where(_destinations.c.link_id == func.coalesce(_links.c.parent_id, _links.c.id))
        .label("has_destinations"),
    )
    .select_from(_links.outerjoin(_parents, _parents.c.id == _links.c.parent_id))
    .where(_links.c.code == bindparam("code"))
)


#: ``_FIND_LINK`` compiled for each click writer (one per app and database).


def find_link(code: str, state=None) -> CachedLink | None:
    """The link for ``code``: from the in-process cache while fresh, else
    from the shared cache in Redis (with ``SMSTRACK_REDIS_URL``), else from
    the database (and cached in both).

    While the database cannot be read (its breaker is open, or the lookup
    failed or timed out), an expired cache entry is served instead; with
    none, :class:`~.hotdb.DatabaseUnavailable` is raised.
    """
    state = state or get_state()
    links = state.links
    cached = links.get(code)
    if cached is not None:
        return cached
    from .shared_links import shared_links

    shared = shared_links(state)
    if shared is not None and (cached := shared.get(code)) is not None:
        return cached
    try:
        cached = lookup_link(code, state)
    except DatabaseUnavailable:
        stale = links.stale(code)
        if stale is None:
            raise
        return stale
    if cached is None:
        links.discard(code)
    else:
        (shared or links).put(code, cached)
    return cached


def lookup_link(code: str, state) -> CachedLink | None:
    """The link for ``code`` read from the database on the hot path (short
    timeouts, through the breaker); ``None`` when there is none.
    Raises :class:`~.hotdb.DatabaseUnavailable`."""
    # On the click writer's own connection: no pool checkout, the
    # statement compiled once.
    writer = state.click_writer
    link = writer.first(writer.compile(_FIND_LINK), {"code": code})
    if link is None:
        return None
    destination = with_query(link.destination_url, dict(link.utm or {}))
    param = current_app.config[Keys.CLICK_PARAM]
    before, after = click_id_slot(destination, param)
    destinations = load_destinations(state, link.id, link.utm, param) if link.has_destinations else ()
    return CachedLink(
        # A recipient's own link counts its clicks for its campaign link.
        id=link.id,
        campaign_id=link.campaign_id,
        recipient_id=link.recipient_id,
        variant_id=link.variant_id,
        destination=destination,
        append_click_id=bool(link.append_click_id),
        before=before,
        after=after,
        disabled=bool(link.disabled),
        expires_at=link.expires_at.timestamp() if link.expires_at is not None else None,
        fallback=link.fallback_url,
        destinations=destinations,
    )


def redirect_target(link: CachedLink, click_id: str, destination: Destination | None = None) -> str:
    """Where the visitor goes, as a URI: the destination (``destination``
    when the link's test chose one), with the click id if wanted."""
    if link.append_click_id:
        chosen = destination if destination is not None else link
        head, tail = _as_uri(chosen.before, chosen.after)
        return head + click_id + tail
    return _uri(destination.url if destination is not None else link.destination)


#: Destinations as URIs (see :func:`_uri`), and split around their click id
#: (see :func:`_as_uri`).
_URIS: dict[Any, Any] = {}
#: A stand-in for the click id while a destination is turned into a URI.
_MARK = "0smstrackclickid0"


def to_uri(url: str) -> str:
    """``iri_to_uri(url)``, as werkzeug sends a ``Location``; an address
    werkzeug cannot read (a port out of range) keeps its ASCII as written,
    the rest percent-encoded: the visitor is sent on all the same."""
    try:
        return iri_to_uri(url)
    except ValueError:
        return quote(url, safe="%/:=&?~#+!$,;'@()*[]-._")


def _remember(key: Any, value: Any) -> Any:
    if len(_URIS) >= 4096:
        _URIS.clear()
    _URIS[key] = value
    return value


def _uri(url: str) -> str:
    """:func:`to_uri` of ``url``, remembered."""
    found = _URIS.get(url)
    return found if found is not None else _remember(url, to_uri(url))


def _as_uri(before: str, after: str) -> tuple[str, str]:
    """``before`` and ``after`` (a destination split around its click id's
    value, which follows ``?...param=``) as a URI's, remembered: a click id
    (base32hex, like the stand-in) is left as it is by :func:`to_uri`, so
    ``head + click_id + tail`` is what werkzeug would send for the whole
    address."""
    key = (before, after)
    found = _URIS.get(key)
    if found is None:
        head, _, tail = to_uri(before + _MARK + after).rpartition(_MARK)
        found = _remember(key, (head, tail))
    return found


def _referrer_host(referrer: str | None) -> str | None:
    if not referrer:
        return None
    try:
        host = urlsplit(referrer).hostname
    except ValueError:
        return None
    return host[:255] if host else None


def click_row(
    click_id: str,
    created_at: dt.datetime,
    link_id: int,
    campaign_id: int,
    kind: str,
    agent: Agent,
    **fields: Any,
) -> dict[str, Any]:
    """A row of the clicks table, every column given: the one shape the
    redirect, Twilio's click events and the demos write. ``fields`` set the
    others (``recipient_id``, ``is_first``, ``country``...)."""
    row = {
        "click_id": click_id,
        "created_at": created_at,
        "link_id": link_id,
        "campaign_id": campaign_id,
        "recipient_id": None,
        "variant_id": None,
        "kind": kind,
        "bot_reason": None,
        "source": None,
        "is_first": False,
        "human_confirmed": False,
        "visitor_id": None,
        "device_type": agent.device_type,
        "os": agent.os,
        "browser": agent.browser,
        "country": None,
        "ip": None,
        "referrer_host": None,
        "destination_no": None,
    }
    row.update(fields)
    return row


def record_click(link: CachedLink, request, state=None) -> tuple[str, Agent, Destination | None]:
    """Record one request to ``link`` and return its click id, agent and,
    for a link with a landing-page test, the destination chosen
    (:func:`.destinations.assign`; ``None`` otherwise).

    Never raises: a click that cannot be written is spooled and logged.
    """
    click_id = new_click_id()
    state = state or get_state()
    # The WSGI environ directly: this runs on every click.
    environ = request.environ
    try:
        agent = classify_agent(environ.get("HTTP_USER_AGENT", ""))
        if environ["REQUEST_METHOD"] == "HEAD":
            agent = Agent("bot", agent.device_type, agent.os, agent.browser)
        ip = environ.get("REMOTE_ADDR")
        bot_reason = None
        if state.flood is not None and state.flood.hit(ip) and agent.kind == "human":
            agent = Agent("bot", agent.device_type, agent.os, agent.browser)
            bot_reason = "flood"
        referrer = environ.get("HTTP_REFERER")
        row = click_row(
            click_id, utcnow(), link.id, link.campaign_id, agent.kind, agent,
            bot_reason=bot_reason,
            recipient_id=link.recipient_id,
            variant_id=link.variant_id,
            is_first=agent.kind == "human",
            country=state.country(ip, environ),
            # Anonymized only after the country lookup above.
            ip=anonymize_ip(ip) if current_app.config[Keys.STORE_IP] else None,
            referrer_host=_referrer_host(referrer) if referrer else None,
        )
    except Exception:  # pragma: no cover - defensive: the visitor must get the redirect
        logger.exception("Could not classify a click on link %s", link.id)
        row = {"click_id": click_id, "visitor_id": None}
        return click_id, Agent("human", None, None, None), assign(link, row) if link.destinations else None
    previous = None
    chosen = None
    try:
        # A human click on a recipient's own link is placed against the
        # recipient's first click by the write itself: one round trip.
        place = agent.kind == "human" and link.recipient_id is not None
        if agent.kind == "human" and "HTTP_COOKIE" in environ:
            cookie = request.cookies.get(current_app.config[Keys.COOKIE_NAME])
            if cookie and CLICK_ID_RE.match(cookie):
                previous = cookie  # until joined: the replay joins a spooled click
                _join_visitor(state.click_writer, row, previous)
                previous = None
        # After the visitor is known: a returning visitor keeps their destination.
        chosen = assign(link, row) if link.destinations else None
        state.click_writer.write(row, place=place)
    except DatabaseUnavailable as err:
        # The database is down or hung: no traceback per click.
        logger.warning("Could not record click %s on link %s (%s); spooled for replay", click_id, link.id, err)
        chosen = _spool(state, link, row, chosen, previous)
    except Exception:
        logger.exception("Could not record click %s on link %s; spooled for replay", click_id, link.id)
        chosen = _spool(state, link, row, chosen, previous)
    return click_id, agent, chosen


def _spool(state, link: CachedLink, row: dict[str, Any], chosen: Destination | None,
           previous: str | None) -> Destination | None:
    """Spool ``row`` (with the cookie's click id when the visitor is not
    joined yet), with its destination chosen when that was not done yet."""
    if chosen is None and link.destinations:
        chosen = assign(link, row)
    spool_click(state.spool_dir, row, previous)
    return chosen


def _returning_visitor():
    """The visitor of an earlier click (``:previous``, from the cookie) and
    whether they clicked in the campaign (``:campaign_id``) before as a human:
    one statement."""
    c = _clicks.c
    previous = (
        select(func.coalesce(c.visitor_id, c.click_id).label("visitor"))
        .where(c.click_id == bindparam("previous"))
        .limit(1)
        .subquery("previous")
    )
    seen = exists().where(
        or_(c.visitor_id == previous.c.visitor, c.click_id == previous.c.visitor),
        c.campaign_id == bindparam("campaign_id"),
        c.kind == "human",
    )
    return select(previous.c.visitor, seen.label("seen")).select_from(previous)


_RETURNING_VISITOR = _returning_visitor()


def _join_visitor(writer, row: dict[str, Any], previous_click_id: str) -> None:
    """Mark ``row`` as the returning visitor's, on the click writer's own
    connection (one round trip, the hot path's timeouts and breaker)."""
    params = {"previous": previous_click_id, "campaign_id": row["campaign_id"]}
    _mark_visitor(row, writer.first(writer.compile(_RETURNING_VISITOR), params))


def join_visitor(conn, row: dict[str, Any], previous_click_id: str) -> None:
    """:func:`_join_visitor` on ``conn`` (a connection or session), for
    clicks written late from the spool."""
    params = {"previous": previous_click_id, "campaign_id": row["campaign_id"]}
    _mark_visitor(row, conn.execute(_RETURNING_VISITOR, params).first())


def _mark_visitor(row: dict[str, Any], found) -> None:
    if found is not None and found.visitor is not None:
        row["visitor_id"] = found.visitor
        row["is_first"] = not found.seen


def join_recipient(conn, row: dict[str, Any]) -> None:
    """Place a human click on a recipient's own link.

    The recipient's first human click is their unique click. A later one
    from the same device (the same visitor cookie, or the same device,
    browser and network) is a repeat; from another device it is a
    ``forward``: the message was passed on, and the click is counted apart.
    The redirect's own clicks are placed by the same rules in their insert
    (:data:`.writer.PLACED_INSERT`).
    """
    first = conn.execute(RECIPIENT_FIRST, {"recipient_id": row["recipient_id"]}).first()
    if first is None:
        row["is_first"] = True
        return
    row["is_first"] = False
    same_visitor = row["visitor_id"] is not None and row["visitor_id"] == (first.visitor_id or first.click_id)
    same_device = (row["device_type"], row["os"], row["browser"], row["ip"]) == (
        first.device_type,
        first.os,
        first.browser,
        first.ip,
    )
    if not (same_visitor or same_device):
        row["kind"] = "forward"
