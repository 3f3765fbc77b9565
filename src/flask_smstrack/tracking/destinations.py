"""Landing-page tests on the redirect's side: which of a link's weighted
destinations a visitor gets.

The choice is a pure function of the link and the visitor: the first 8 bytes
of SHA-256 over the link id and the visitor's key, modulo the sum of the
weights, picks the destination whose weight covers that point. Every node
and worker chooses the same with nothing stored, and a visitor keeps their
destination from one click to the next. The key is, in order:

- the recipient, on a recipient's own link;
- the visitor, for a returning browser: the click id of its first click,
  which the attribution cookie leads to (:func:`.clicks.record_click`
  reads it for every human click that carries the cookie);
- else the click itself, whose id the cookie then carries, so that the
  visitor's next click finds the same destination.

A link's destinations are kept in the link caches with the link (in this
process and in Redis), so that a cached redirect makes no query for them.
"""
from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

from sqlalchemy import select

from ..models import LinkDestination

_d = LinkDestination.__table__.c


class Destination(NamedTuple):
    """One destination as the link cache keeps it (a plain tuple in JSON)."""

    number: int
    weight: int
    #: The destination with the link's UTM parameters.
    url: str
    #: ``url`` split around the click id's place (see ``CachedLink``).
    before: str
    after: str


def visitor_key(recipient_id: int | None, visitor_id: str | None, click_id: str) -> str:
    """What a visitor's destination is chosen by (see the module's text)."""
    if recipient_id is not None:
        return f"r:{recipient_id}"
    return f"v:{visitor_id or click_id}"


def bucket(link_id: int, key: str, total: int) -> int:
    """A point in ``[0, total)`` for ``key`` on link ``link_id``: the same
    everywhere, and spread evenly over keys."""
    digest = hashlib.sha256(f"{link_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % total


def choose(link_id: int, destinations: tuple[Destination, ...], key: str) -> Destination:
    """The destination of the visitor ``key`` among ``destinations``."""
    point = bucket(link_id, key, sum(d.weight for d in destinations))
    for destination in destinations:
        point -= destination.weight
        if point < 0:
            return destination
    return destinations[-1]  # pragma: no cover - the weights cover every point


def assign(link: Any, row: dict[str, Any]) -> Destination | None:
    """Choose the destination of the click ``row`` on ``link`` (a
    ``CachedLink``) and note its number in the row; ``None`` for a link
    without destinations."""
    if not link.destinations:
        return None
    key = visitor_key(link.recipient_id, row["visitor_id"], row["click_id"])
    destination = choose(link.id, link.destinations, key)
    row["destination_no"] = destination.number
    return destination


def load_destinations(state: Any, link_id: int, utm: dict | None, param: str) -> tuple[Destination, ...]:
    """The destinations of link ``link_id`` for the link cache, each with the
    link's ``utm`` and split around the click id parameter ``param``.
    Raises :class:`~.hotdb.DatabaseUnavailable`."""
    from .clicks import click_id_slot, with_query

    query = select(_d.number, _d.weight, _d.url).where(_d.link_id == link_id).order_by(_d.number)
    rows = state.hot.run(lambda conn: conn.execute(query).all())
    out = []
    for number, weight, url in rows:
        full = with_query(url, dict(utm or {}))
        before, after = click_id_slot(full, param)
        out.append(Destination(number, weight, full, before, after))
    return tuple(out)


def decoded(raw: Any) -> tuple[Destination, ...]:
    """Destinations as the shared cache's JSON gives them back (lists)."""
    return tuple(Destination(*item) for item in raw or ())
