"""Every write of tracking data: clicks, landing confirmations, conversions.

The click write sits on the redirect's hot path: it is one lean Core
``INSERT`` on a pooled connection, committed before the ``302`` leaves, with
no ORM unit of work. When it fails the click is appended to a spool file and
written later by ``flask smstrack replay-spool``; the visitor is redirected
either way.
"""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import glob
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote_plus, unquote_plus, urlsplit

from flask import current_app

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
from sqlalchemy import bindparam, case, event, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..models import Click, Conversion, Link, utcnow
from ..schemas import CLICK_ID_RE
from ..state import get_state
from .classify import Agent, anonymize_ip, classify_agent

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
    )
    .select_from(_links.outerjoin(_parents, _parents.c.id == _links.c.parent_id))
    .where(_links.c.code == bindparam("code"))
)


def find_link(code: str, state=None) -> CachedLink | None:
    """The link for ``code``, from the in-process cache or the database."""
    state = state or get_state()
    cached = state.links.get(code)
    if cached is not None:
        return cached
    link = state.db.session.connection().execute(_FIND_LINK, {"code": code}).first()
    if link is None:
        return None
    destination = with_query(link.destination_url, dict(link.utm or {}))
    before, after = click_id_slot(destination, current_app.config["SMSTRACK_CLICK_PARAM"])
    cached = CachedLink(
        # A recipient's own link counts its clicks for its campaign link.
        id=link.id,
        campaign_id=link.campaign_id,
        recipient_id=link.recipient_id,
        variant_id=link.variant_id,
        destination=destination,
        append_click_id=bool(link.append_click_id),
        before=before,
        after=after,
    )
    state.links.put(code, cached)
    return cached


def redirect_target(link: CachedLink, click_id: str) -> str:
    """Where the visitor goes: the destination, with the click id if wanted."""
    if not link.append_click_id:
        return link.destination
    return link.before + click_id + link.after


def _referrer_host(referrer: str | None) -> str | None:
    if not referrer:
        return None
    try:
        host = urlsplit(referrer).hostname
    except ValueError:
        return None
    return host[:255] if host else None


class _FileLock:
    """An exclusive lock shared by every process that writes clicks to one
    SQLite file.

    SQLite's own busy handler sleeps at least a millisecond before it retries,
    ten times longer than a click's write; a kernel lock wakes the next writer
    as soon as the lock is free.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._pid: int | None = None

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            if self._pid != os.getpid():  # opened again after a fork
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                self._pid = os.getpid()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def __exit__(self, *exc) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


def _is_sqlite_file(engine) -> bool:
    database = engine.url.database
    return engine.dialect.name == "sqlite" and bool(database) and database != ":memory:"


def _write_lock(engine):
    if fcntl is None or not _is_sqlite_file(engine):
        return contextlib.nullcontext()
    return _FileLock(os.path.abspath(engine.url.database) + ".smstrack-lock")


class _Checkpointer:
    """Copies SQLite's write-ahead log into the database from a background
    thread, once a second, so that no visitor's redirect waits for the fsync
    of a checkpoint. ``PASSIVE`` checkpoints never block writers."""

    INTERVAL = 1.0

    def __init__(self, engine) -> None:
        self.engine = engine
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def start(self) -> None:
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            return
        self._stop = threading.Event()
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="smstrack-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread() and self._pid == os.getpid():
            thread.join(timeout=5)
        self._thread = None

    def _run(self) -> None:
        fairy = self.engine.raw_connection()
        fairy.detach()
        connection = fairy.dbapi_connection
        connection.isolation_level = None
        try:
            while not self._stop.wait(self.INTERVAL):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except Exception:
                    logger.warning("SQLite checkpoint failed; it will be tried again", exc_info=True)
            # A last one, so that a stopped app leaves a small log behind.
            with contextlib.suppress(Exception):
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            connection.close()


class ClickWriter:
    """One precompiled ``INSERT`` of a click on a DBAPI connection kept for
    click writes: no ORM, no statement compilation and no pool checkout per
    request.

    Built once per engine; each thread keeps one connection, opened through
    the engine (so its connect hooks run) and closed by ``engine.dispose()``.
    Values go through the columns' own bind processors, so what is stored is
    what the ORM would store.
    """

    COLUMNS = tuple(c.name for c in _clicks.columns if c.name != "id")

    def __init__(self, engine, *, sync_commit: bool = True) -> None:
        dialect = engine.dialect
        self.sync_commit = sync_commit
        compiled = insert(_clicks).compile(dialect=dialect, column_keys=list(self.COLUMNS))
        self.engine = engine
        self.lock = _write_lock(engine)
        self.sql = str(compiled)
        names = tuple(compiled.positiontup) if compiled.positional else self.COLUMNS
        self.positional = compiled.positional
        self.names = names
        self.processors = tuple(
            (i, name, processor)
            for i, name in enumerate(names)
            if (processor := _clicks.c[name].type.dialect_impl(dialect).bind_processor(dialect))
        )
        self._local = threading.local()
        self._connections: list[Any] = []
        self.checkpointer = _Checkpointer(engine) if _is_sqlite_file(engine) else None
        event.listen(engine, "engine_disposed", self.close)

    def params(self, row: dict[str, Any]):
        if self.positional:
            values = [row[name] for name in self.names]
            for i, _, processor in self.processors:
                values[i] = processor(values[i])
            return values
        values = dict(row)
        for _, name, processor in self.processors:
            values[name] = processor(values[name])
        return values

    def _connection(self):
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # first use, or forked
            fairy = self.engine.raw_connection()
            fairy.detach()
            connection = fairy.dbapi_connection
            # Each INSERT is its own transaction: one statement, no BEGIN
            # and COMMIT round trips.
            if self.engine.dialect.name == "sqlite":
                connection.isolation_level = None
                local.autocommit = True
                if self.checkpointer is not None:
                    # Checkpoints (and their fsync) run in the background.
                    connection.execute("PRAGMA wal_autocheckpoint=0")
                    self.checkpointer.start()
            else:
                try:
                    connection.autocommit = True
                    local.autocommit = True
                except Exception:
                    local.autocommit = False
                if not self.sync_commit and self.engine.dialect.name == "postgresql":
                    with contextlib.closing(connection.cursor()) as cursor:
                        cursor.execute("SET synchronous_commit TO off")
                    if not local.autocommit:
                        connection.commit()
            local.connection, local.pid = connection, os.getpid()
            self._connections.append(connection)
        return local.connection

    def _drop(self, connection) -> None:
        self._local.pid = None
        with contextlib.suppress(Exception):
            self._connections.remove(connection)
        with contextlib.suppress(Exception):
            connection.close()

    def write(self, row: dict[str, Any]) -> None:
        """Insert and commit ``row``."""
        params = self.params(row)
        connection = self._connection()
        cursor = None
        try:
            with self.lock:
                cursor = connection.cursor()
                cursor.execute(self.sql, params)
                if not self._local.autocommit:
                    connection.commit()
        except Exception as err:
            if not self._local.autocommit:
                with contextlib.suppress(Exception):
                    connection.rollback()
            if self.engine.dialect.is_disconnect(err, connection, cursor):
                self._drop(connection)
            raise
        finally:
            if cursor is not None:
                with contextlib.suppress(Exception):
                    cursor.close()

    def close(self, *_args) -> None:
        """Close every connection this writer opened."""
        if self.checkpointer is not None:
            self.checkpointer.stop()
        while self._connections:
            with contextlib.suppress(Exception):
                self._connections.pop().close()
        self._local = threading.local()


def _click_writer(state) -> ClickWriter:
    writer = state.extra.get("click_writer")
    if writer is None:
        writer = state.extra["click_writer"] = ClickWriter(
            state.db.engine, sync_commit=current_app.config["SMSTRACK_CLICK_SYNC_COMMIT"]
        )
    return writer


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
    }
    row.update(fields)
    return row


def record_click(link: CachedLink, request, state=None) -> tuple[str, Agent]:
    """Record one request to ``link`` and return its click id and agent.

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
        referrer = environ.get("HTTP_REFERER")
        row = click_row(
            click_id, utcnow(), link.id, link.campaign_id, agent.kind, agent,
            recipient_id=link.recipient_id,
            variant_id=link.variant_id,
            is_first=agent.kind == "human",
            country=state.country(ip, environ),
            # Anonymized only after the country lookup above.
            ip=anonymize_ip(ip),
            referrer_host=_referrer_host(referrer) if referrer else None,
        )
    except Exception:  # pragma: no cover - defensive: the visitor must get the redirect
        logger.exception("Could not classify a click on link %s", link.id)
        return click_id, Agent("human", None, None, None)
    try:
        if agent.kind == "human":
            if "HTTP_COOKIE" in environ:
                previous = request.cookies.get(current_app.config["SMSTRACK_COOKIE_NAME"])
                if previous and CLICK_ID_RE.match(previous):
                    _join_visitor(state, row, previous)
            if link.recipient_id is not None:
                # The request's own connection: a recipient's link is rarely
                # cached, so find_link has usually just opened it.
                join_recipient(state.db.session.connection(), row)
        _click_writer(state).write(row)
    except Exception:
        logger.exception("Could not record click %s on link %s; spooled for replay", click_id, link.id)
        _spool(state.spool_dir, row)
    return click_id, agent


def _join_visitor(state, row: dict[str, Any], previous_click_id: str) -> None:
    """Attach a returning visitor's click to the visitor of its earlier click."""
    with state.db.engine.connect() as conn:
        _join_visitor_on(conn, row, previous_click_id)


def _join_visitor_on(conn, row: dict[str, Any], previous_click_id: str) -> None:
    c = _clicks.c
    visitor = conn.execute(
        select(func.coalesce(c.visitor_id, c.click_id)).where(c.click_id == previous_click_id)
    ).scalar()
    if visitor is None:
        return
    row["visitor_id"] = visitor
    seen = conn.execute(
        select(
            exists().where(
                or_(c.visitor_id == visitor, c.click_id == visitor),
                c.campaign_id == row["campaign_id"],
                c.kind == "human",
            )
        )
    ).scalar()
    row["is_first"] = not seen


_RECIPIENT_FIRST = (
    select(_clicks.c.click_id, _clicks.c.visitor_id, _clicks.c.device_type, _clicks.c.os, _clicks.c.browser, _clicks.c.ip)
    .where(_clicks.c.recipient_id == bindparam("recipient_id"), _clicks.c.kind == "human", _clicks.c.is_first.is_(True))
    .order_by(_clicks.c.id)
    .limit(1)
)


def join_recipient(conn, row: dict[str, Any]) -> None:
    """Place a human click on a recipient's own link.

    The recipient's first human click is their unique click. A later one
    from the same device (the same visitor cookie, or the same device,
    browser and network) is a repeat; from another device it is a
    ``forward``: the message was passed on, and the click is counted apart.
    """
    first = conn.execute(_RECIPIENT_FIRST, {"recipient_id": row["recipient_id"]}).first()
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


# -- spool: clicks that could not be written --------------------------------


def _spool(spool_dir: str, row: dict[str, Any]) -> None:
    try:
        os.makedirs(spool_dir, exist_ok=True)
        line = json.dumps(dict(row, created_at=row["created_at"].isoformat())) + "\n"
        path = os.path.join(spool_dir, f"clicks-{os.getpid()}.jsonl")
        with open(path, "a", encoding="utf-8") as f:
            f.write(line)
    except Exception:
        logger.exception("Could not spool click %s either; it is lost", row.get("click_id"))


def replay_spool(progress=None) -> tuple[int, int]:
    """Write spooled clicks to the database.

    Returns ``(written, already_present)``. Files are renamed before they are
    read, so processes that keep spooling write to new files meanwhile.
    """
    from ..reports.rollups import reset

    state = get_state()
    written = present = 0
    late_campaigns: set[int] = set()
    paths = sorted(glob.glob(os.path.join(state.spool_dir, "clicks-*.jsonl")))
    for path in paths:
        claimed = f"{path}.{int(time.time() * 1000)}.replaying"
        os.rename(path, claimed)
        with open(claimed, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        for row in rows:
            row["created_at"] = dt.datetime.fromisoformat(row["created_at"])
            with state.db.engine.begin() as conn:
                found = conn.execute(
                    select(_clicks.c.id).where(_clicks.c.click_id == row["click_id"])
                ).first()
                if found:
                    present += 1
                else:
                    conn.execute(_INSERT_CLICK, row)
                    written += 1
                    late_campaigns.add(row["campaign_id"])
            if progress is not None:
                progress(1)
        os.remove(claimed)
    # Written after their time: the campaigns' rollups are rebuilt.
    for campaign_id in sorted(late_campaigns):
        reset(campaign_id)
    return written, present


def spooled_count() -> int:
    """How many clicks wait in the spool."""
    state = get_state()
    total = 0
    for path in glob.glob(os.path.join(state.spool_dir, "clicks-*.jsonl")):
        with open(path, encoding="utf-8") as f:
            total += sum(1 for line in f if line.strip())
    return total


# -- landing pings and conversions ------------------------------------------


def confirm_landing(click_id: str) -> bool:
    """Mark a click human-confirmed: the snippet ran on the landing page.

    Returns whether the click exists. The campaign's rollup is kept in step
    (under its lock) when the click was already rolled up.
    """
    from ..reports.rollups import confirm_in_rollup, lock_state

    session = get_state().db.session
    click = session.execute(
        select(Click.id, Click.campaign_id, Click.created_at, Click.kind, Click.human_confirmed).where(
            Click.click_id == click_id
        )
    ).first()
    if click is None:
        return False
    if click.human_confirmed:
        return True
    lock_state(click.campaign_id)
    changed = session.execute(
        update(Click).where(Click.id == click.id, Click.human_confirmed.is_(False)).values(human_confirmed=True)
    ).rowcount
    if changed:
        confirm_in_rollup(click)
    session.commit()
    return True


def find_click(click_id: str | None) -> Click | None:
    """The click with this public id, if it is within the attribution window."""
    if not click_id or not CLICK_ID_RE.match(click_id):
        return None
    db = get_state().db
    click = db.session.execute(select(Click).where(Click.click_id == click_id)).scalar_one_or_none()
    if click is None:
        return None
    days = current_app.config["SMSTRACK_ATTRIBUTION_WINDOW_DAYS"]
    if click.created_at < utcnow() - dt.timedelta(days=days):
        return None
    return click


def _attribute(click_id: str | None) -> Click | None:
    click = find_click(click_id)
    if click is None or current_app.config["SMSTRACK_ATTRIBUTION_MODEL"] != "first":
        return click
    days = current_app.config["SMSTRACK_ATTRIBUTION_WINDOW_DAYS"]
    first = get_state().db.session.execute(
        select(Click)
        .where(
            or_(Click.visitor_id == click.visitor, Click.click_id == click.visitor),
            Click.kind == "human",
            Click.created_at >= utcnow() - dt.timedelta(days=days),
        )
        .order_by(Click.created_at, Click.id)
        .limit(1)
    ).scalar_one_or_none()
    return first or click


@dataclass
class ConversionResult:
    conversion: Conversion
    duplicate: bool

    @property
    def attributed(self) -> bool:
        return self.conversion.click_pk is not None


def record_conversion(
    data: dict[str, Any],
    *,
    source: str,
    trust: str,
    fallback_click_id: str | None = None,
    click_filter=None,
) -> ConversionResult:
    """Store one validated conversion (see :class:`~.schemas.ConversionSchema`).

    A replay of an ``(event, order_id)`` pair already stored changes nothing
    and returns the stored conversion with ``duplicate=True``; the database's
    unique constraint decides, so concurrent replays are safe too.
    ``click_filter`` may reject a click (for API keys that may not see its
    campaign): the conversion is then stored as unattributed.
    """
    db = get_state().db
    event, order_id = data.get("event") or "conversion", data.get("order_id")
    if order_id is not None:
        existing = _find_order(event, order_id)
        if existing is not None:
            return ConversionResult(existing, True)
    reported = data.get("click_id") or fallback_click_id
    click = _attribute(reported)
    if click is not None and click_filter is not None and not click_filter(click):
        click = None
    revenue: Decimal | None = data.get("revenue")
    conversion = Conversion(
        created_at=utcnow(),
        click_pk=click.id if click else None,
        reported_click_id=reported if reported and CLICK_ID_RE.match(reported) else None,
        campaign_id=click.campaign_id if click else None,
        link_id=click.link_id if click else None,
        recipient_id=click.recipient_id if click else None,
        variant_id=click.variant_id if click else None,
        event=event,
        revenue=revenue,
        currency=data.get("currency"),
        order_id=order_id,
        source=source,
        trust=trust,
    )
    db.session.add(conversion)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        existing = _find_order(event, order_id) if order_id is not None else None
        if existing is None:
            raise
        return ConversionResult(existing, True)
    return ConversionResult(conversion, False)


def _find_order(event: str, order_id: str) -> Conversion | None:
    return get_state().db.session.execute(
        select(Conversion).where(Conversion.event == event, Conversion.order_id == order_id)
    ).scalar_one_or_none()


# -- clicks reported by Twilio's Link Shortening -----------------------------


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
    prefix = current_app.config["SMSTRACK_LINK_PREFIX"].rstrip("/") + "/"
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
