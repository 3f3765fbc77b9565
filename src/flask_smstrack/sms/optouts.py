"""Opt-outs: reading STOP and START replies, and changing the suppression list.

A reply is read as carriers read it: the whole message, trimmed of
surrounding spaces and punctuation, in any case. ``STOP``, ``STOPALL``,
``UNSUBSCRIBE``, ``CANCEL``, ``END`` and ``QUIT`` (and
``SMSTRACK_OPT_OUT_KEYWORDS``) opt the number out; ``START``, ``YES`` and
``UNSTOP`` (and ``SMSTRACK_OPT_IN_KEYWORDS``) opt it back in; ``HELP`` and
``INFO`` are only recorded. With Twilio's Advanced Opt-Out, the webhook
carries ``OptOutType`` (``STOP``, ``START`` or ``HELP``), which wins over
the words.

A reply counts for every owner whose campaigns texted the number, and is
attributed, per owner, to the number's latest message sent; a number no
campaign texted is suppressed for every owner. Each change is kept as an
:class:`~flask_smstrack.models.OptOutEvent`; a reply delivered twice (the
same ``MessageSid``) changes nothing the second time. Numbers are stored
only as their keyed hash and last two digits.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Iterable

from flask import current_app
from sqlalchemy import and_, delete, func, select

from ..config import Keys
from ..models import EVERY_OWNER, SENT_CONDITION, Campaign, OptOutEvent, Recipient, Suppression, utcnow
from ..reports.rollups import dialect_insert
from ..state import get_state
from .recipients import ImportError_, header_columns, normalize_phone
from .suppression import is_number, phone_hasher, phone_tail

OPT_OUT_WORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")
OPT_IN_WORDS = ("START", "YES", "UNSTOP")
HELP_WORDS = ("HELP", "INFO")
#: Where a suppression came from (``reply`` is an SMS keyword).
SOURCES = ("reply", "cli", "import", "api", "dashboard", "twilio", "clicksend")
#: Twilio Advanced Opt-Out's ``OptOutType`` values, and the action of each.
OPT_OUT_TYPES = {"STOP": "opt_out", "START": "opt_in", "HELP": "help"}


@dataclass(frozen=True)
class Reply:
    """What a reply asks: ``opt_out``, ``opt_in`` or ``help``, and its word."""

    action: str
    keyword: str


def _trimmed(text: str) -> str:
    """``text`` without surrounding spaces, punctuation and symbols, its
    inner spaces made one, in upper case."""
    def edge(ch: str) -> bool:
        return ch.isspace() or unicodedata.category(ch)[0] in "PSZC"

    start, end = 0, len(text)
    while start < end and edge(text[start]):
        start += 1
    while end > start and edge(text[end - 1]):
        end -= 1
    return " ".join(text[start:end].split()).upper()


def configured_keywords(key: str) -> list[str]:
    """The reply words of a config key, as configured: a list, or one string
    of words separated by commas or spaces (as an environment variable
    gives it)."""
    value = current_app.config.get(key) or []
    if isinstance(value, str):
        value = re.split(r"[,\s]+", value)
    return [str(w).strip() for w in value if str(w).strip()]


def _configured(key: str) -> list[str]:
    return [w for w in (_trimmed(v) for v in configured_keywords(key)) if w]


def read_reply(body: str | None, opt_out_type: str | None = None) -> Reply | None:
    """The keyword a reply is, or ``None`` for any other message."""
    word = _trimmed(body or "")
    casefolded = word.casefold()

    def among(words: Iterable[str]) -> bool:
        return any(casefolded == w.casefold() for w in words)

    kind = (opt_out_type or "").strip().upper()
    if kind in OPT_OUT_TYPES:
        return Reply(OPT_OUT_TYPES[kind], (word or kind)[:32])
    if among(OPT_OUT_WORDS) or among(_configured(Keys.OPT_OUT_KEYWORDS)):
        return Reply("opt_out", word[:32])
    if among(OPT_IN_WORDS) or among(_configured(Keys.OPT_IN_KEYWORDS)):
        return Reply("opt_in", word[:32])
    if among(HELP_WORDS):
        return Reply("help", word[:32])
    return None


@dataclass
class Change:
    """What an opt-out or opt-in of several numbers did."""

    #: Numbers added to (opt-out) or removed from (opt-in) the list.
    changed: int = 0
    #: Numbers already on the list (opt-out) or not on it (opt-in).
    unchanged: int = 0
    #: ``(line number, why it is not a number)`` of a file's rows left out.
    invalid: list[tuple[int, str]] = field(default_factory=list)


def _insert_absent(session, rows: list[dict]) -> list[str]:
    """Insert the suppressions not there yet (a concurrent insert of the
    same one is no error); the hashes that were new."""
    if not rows:
        return []
    table = Suppression.__table__
    insert = dialect_insert(session.get_bind().dialect.name)
    stmt = (
        insert(table)
        .on_conflict_do_nothing(index_elements=[table.c.owner_id, table.c.phone_hash])
        .returning(table.c.phone_hash)
    )
    return list(session.execute(stmt, rows).scalars())


def _events(session, rows: list[dict]) -> None:
    if rows:
        session.execute(OptOutEvent.__table__.insert(), rows)


def opt_out(phones: Iterable[str], owner_id: str = EVERY_OWNER, *, source: str, keyword: str | None = None) -> Change:
    """Suppress ``phones`` (E.164) for ``owner_id``'s campaigns (for every
    owner's with :data:`EVERY_OWNER`), with an opt-out event for each
    number newly suppressed."""
    return _change(phones, owner_id, "opt_out", source, keyword)


def opt_in(phones: Iterable[str], owner_id: str = EVERY_OWNER, *, source: str, keyword: str | None = None) -> Change:
    """Take ``phones`` (E.164) off ``owner_id``'s suppression list, with an
    opt-in event for each number removed."""
    return _change(phones, owner_id, "opt_in", source, keyword)


def _change(phones: Iterable[str], owner_id: str, action: str, source: str, keyword: str | None) -> Change:
    session = get_state().db.session
    digest = phone_hasher()
    by_hash = {digest(p): p for p in phones}
    table = Suppression.__table__
    now = utcnow()
    result = Change()
    done: list[str] = []
    hashes = list(by_hash)
    for start in range(0, len(hashes), 500):
        chunk = hashes[start:start + 500]
        if action == "opt_out":
            # The insert skips numbers already listed and returns the others.
            done += _insert_absent(session, [
                {"owner_id": owner_id, "phone_hash": h, "phone_tail": phone_tail(by_hash[h]), "source": source,
                 "keyword": keyword, "created_at": now} for h in chunk
            ])
        else:
            where = and_(table.c.owner_id == owner_id, table.c.phone_hash.in_(chunk))
            done += session.execute(delete(table).where(where).returning(table.c.phone_hash)).scalars().all()
    result.changed = len(done)
    result.unchanged = len(by_hash) - len(done)
    _events(session, [
        {"owner_id": owner_id, "phone_hash": h, "phone_tail": phone_tail(by_hash[h]), "action": action,
         "source": source, "keyword": keyword, "created_at": now} for h in done
    ])
    session.commit()
    return result


@dataclass(frozen=True)
class Sent:
    """The number's latest message sent by one owner's campaigns."""

    owner_id: str
    campaign_id: int | None = None
    variant_id: int | None = None
    recipient_id: int | None = None


def latest_messages(phone: str, phone_hash: str) -> list[Sent]:
    """Per owner whose campaigns texted the number, its latest message
    (by the number, or by its hash once the number was forgotten)."""
    r = Recipient.__table__.c
    c = Campaign.__table__.c
    rows = get_state().db.session.execute(
        select(c.owner_id, r.campaign_id, r.variant_id, r.id)
        .join(Campaign.__table__, c.id == r.campaign_id)
        .where(is_number(phone, phone_hash), *SENT_CONDITION)
        .order_by(func.coalesce(r.sent_at, r.status_at, r.created_at).desc(), r.id.desc())
    ).all()
    latest: dict[str, Sent] = {}
    for owner, campaign_id, variant_id, recipient_id in rows:
        owner = owner or EVERY_OWNER
        latest.setdefault(owner, Sent(owner, campaign_id, variant_id, recipient_id))
    return list(latest.values())


@dataclass
class ReplyResult:
    reply: Reply
    #: The owners whose list the reply changed or recorded, in order.
    owners: list[str]
    #: Whether the same message was read before (nothing changed).
    duplicate: bool = False


def record_reply(phone: str, reply: Reply, *, message_sid: str | None) -> ReplyResult:
    """Act on a keyword reply from ``phone`` (E.164); see the module doc."""
    session = get_state().db.session
    digest = phone_hasher()(phone)
    tail = phone_tail(phone)
    senders = latest_messages(phone, digest) or [Sent(EVERY_OWNER)]
    events = OptOutEvent.__table__
    insert = dialect_insert(session.get_bind().dialect.name)
    now = utcnow()
    acted: list[str] = []
    for sent in senders:
        values = {
            "owner_id": sent.owner_id, "phone_hash": digest, "phone_tail": tail, "action": reply.action,
            "source": "reply", "keyword": reply.keyword, "campaign_id": sent.campaign_id,
            "variant_id": sent.variant_id, "recipient_id": sent.recipient_id, "external_id": message_sid,
            "created_at": now,
        }
        stmt = insert(events).values(**values)
        if message_sid:
            stmt = stmt.on_conflict_do_nothing(index_elements=[events.c.owner_id, events.c.external_id])
        if session.execute(stmt.returning(events.c.id)).first() is not None:
            acted.append(sent.owner_id)
    table = Suppression.__table__
    if reply.action == "opt_out":
        _insert_absent(session, [
            {"owner_id": owner, "phone_hash": digest, "phone_tail": tail, "source": "reply",
             "keyword": reply.keyword, "created_at": now} for owner in acted
        ])
    elif reply.action == "opt_in" and acted:
        session.execute(
            delete(table).where(table.c.phone_hash == digest, table.c.owner_id.in_({*acted, EVERY_OWNER}))
        )
    session.commit()
    return ReplyResult(reply, acted, duplicate=not acted)


def normalize_all(raw: Iterable[str], region: str | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """The numbers of ``raw`` in E.164 (without repeats), and ``(input, why)``
    for each that is not a valid number; numbers without a country code
    take ``region`` (default ``SMSTRACK_DEFAULT_REGION``)."""
    region = region or current_app.config[Keys.DEFAULT_REGION]
    phones: dict[str, None] = {}
    invalid: list[tuple[str, str]] = []
    for text in raw:
        try:
            phones[normalize_phone(text, region)] = None
        except ValueError as err:
            invalid.append((text, str(err)))
    return list(phones), invalid


def import_opt_outs(
    rows: Iterable[tuple[int, list[str]]],
    owner_id: str = EVERY_OWNER,
    *,
    source: str = "import",
    region: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Change:
    """Suppress the numbers of a CSV (header first, a phone column as for
    recipients; other columns are ignored). ``invalid`` names the lines
    left out."""
    rows = iter(rows)
    try:
        _, header = next(rows)
    except StopIteration:
        raise ImportError_("the file is empty") from None
    phone_at = header_columns(header)[0]
    region = region or current_app.config[Keys.DEFAULT_REGION]
    phones: dict[str, None] = {}
    invalid: list[tuple[int, str]] = []
    for line, cells in rows:
        if progress is not None:
            progress(1)
        if not any(c.strip() for c in cells):
            continue
        try:
            phones[normalize_phone(cells[phone_at] if phone_at < len(cells) else "", region)] = None
        except ValueError as err:
            invalid.append((line, str(err)))
    result = opt_out(phones, owner_id, source=source)
    result.invalid = invalid
    return result
