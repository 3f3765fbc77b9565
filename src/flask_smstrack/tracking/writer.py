"""The click writer: one precompiled INSERT per click on a connection kept
per thread, a write lock for SQLite files shared by every worker, and a
background WAL checkpointer (:mod:`.walguard`).

A human click on a recipient's own link is placed by the same statement
(:data:`PLACED_INSERT`): the database reads the recipient's first human
click and sets ``is_first`` and ``kind`` as it inserts, so such a click
costs one round trip, not a query and then an insert."""
from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
from sqlalchemy import and_, bindparam, case, event, func, insert, literal, or_, select, text, true

from ..models import RECIPIENT_FIRST_CLICK, Click
from .groupcommit import GroupCommit
from .hotdb import DatabaseUnavailable, HotPath, is_integrity_error, server_closed
from .walguard import WalGuard

logger = logging.getLogger("flask_smstrack")

_clicks = Click.__table__
_c = _clicks.c

#: A recipient's first human click: their unique click, which tells a
#: repeat from a forward (:func:`.clicks.join_recipient`).
RECIPIENT_FIRST = (
    select(_c.click_id, _c.visitor_id, _c.device_type, _c.os, _c.browser, _c.ip)
    # The partial index's own predicate, spelled as it is, with no
    # parameter in it: one index probe per partition.
    .where(_c.recipient_id == bindparam("recipient_id"), text(RECIPIENT_FIRST_CLICK))
    .order_by(_c.id)
    .limit(1)
)

#: Every column but the id, in the table's order: what a click row gives.
COLUMNS = tuple(c.name for c in _clicks.columns if c.name != "id")


def _placed_insert():
    """``INSERT ... SELECT`` of a human click on a recipient's own link, placed
    against the recipient's first human click as
    :func:`.clicks.join_recipient` places it: with none, the click is the
    first; else it is a repeat when it comes from the same visitor (cookie)
    or the same device, browser and network (``None`` equal to ``None``), and
    a ``forward`` otherwise. Its other values are the row's."""
    first = RECIPIENT_FIRST.subquery("first")

    def value(name):
        return bindparam(name, type_=_c[name].type)

    none = first.c.click_id.is_(None)
    same_visitor = func.coalesce(first.c.visitor_id, first.c.click_id) == value("visitor_id")
    same_device = and_(*(first.c[n].is_not_distinct_from(value(n)) for n in ("device_type", "os", "browser", "ip")))
    computed = {
        "is_first": none,
        "kind": case((or_(none, same_visitor, same_device), value("kind")), else_=literal("forward")),
    }
    one = select(literal(1).label("one")).subquery("one")
    values = [computed[name] if name in computed else value(name) for name in COLUMNS]
    return insert(_clicks).from_select(list(COLUMNS), select(*values).select_from(one.outerjoin(first, true())))


#: See :func:`_placed_insert`.
PLACED_INSERT = _placed_insert()


class _Compiled:
    """A statement compiled once for a dialect, its parameters' order and their
    types' own bind processors: values in, DBAPI parameters out. For a
    ``SELECT``, also its columns' result processors: DBAPI rows in, rows with
    named fields (what SQLAlchemy would give) out."""

    def __init__(self, statement, dialect, column_keys=None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        self.sql = str(compiled)
        self.positional = compiled.positional
        #: Constants of the statement itself (``'forward'``, ``LIMIT 1``...).
        named = {name: bind.value for bind, name in compiled.bind_names.items()}
        self.defaults = {name: value for name, value in named.items() if name not in COLUMNS}
        self.names = tuple(compiled.positiontup) if compiled.positional else tuple(named)
        types = {name: bind.type for bind, name in compiled.bind_names.items()}
        self.processors = tuple(
            (i, name, processor)
            for i, name in enumerate(self.names)
            if (processor := types[name].dialect_impl(dialect).bind_processor(dialect))
        )
        selected = getattr(statement, "selected_columns", None)
        if selected is not None:
            self.row = collections.namedtuple("Row", [c.key for c in selected])
            self.results = tuple(
                (i, processor)
                for i, c in enumerate(selected)
                if (processor := c.type.dialect_impl(dialect).result_processor(dialect, None))
            )

    def make_row(self, values):
        values = list(values)
        for i, processor in self.results:
            values[i] = processor(values[i])
        return self.row(*values)

    def params(self, row: dict[str, Any]):
        values = dict(self.defaults, **row) if self.defaults else row
        if self.positional:
            out = [values[name] for name in self.names]
            for i, _, processor in self.processors:
                out[i] = processor(out[i])
            return out
        out = {name: values[name] for name in self.names}
        for _, name, processor in self.processors:
            out[name] = processor(out[name])
        return out


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


def _pipeline_supported(engine) -> bool:
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return False
    try:
        from psycopg import Pipeline
    except ImportError:  # pragma: no cover - depends on the install
        return False
    return bool(Pipeline.is_supported())


class _Dropped(Exception):
    """A write failed at once on a connection the server had closed (one kept
    by this thread, or a pooled one it was handed: both outlive a restart)."""


class ClickWriter:
    """One precompiled ``INSERT`` of a click on a DBAPI connection kept for
    click writes: no ORM, no statement compilation and no pool checkout per
    request.

    Built once per engine; each thread keeps one connection, opened through
    the engine (so its connect hooks run) and closed by ``engine.dispose()``.
    Values go through the columns' own bind processors, so what is stored is
    what the ORM would store.

    With ``hot`` (:class:`~.hotdb.HotPath`), connections come from the hot
    path's engine (short connect and statement timeouts), each statement is
    under its watchdog, and every write goes through its breaker: while the
    breaker is open :meth:`write` raises :class:`~.hotdb.DatabaseUnavailable`
    at once. A write on a connection the server dropped (a restart) is tried
    once more on a new one.
    """

    COLUMNS = COLUMNS

    #: Default largest size of a SQLite file's write-ahead log, in bytes.
    WAL_LIMIT = 64 * 1024 * 1024

    def __init__(self, engine, *, sync_commit: bool = True, wal_limit: int = WAL_LIMIT,
                 hot: HotPath | None = None) -> None:
        dialect = engine.dialect
        self.sync_commit = sync_commit
        self.insert = _Compiled(insert(_clicks), dialect, column_keys=list(COLUMNS))
        #: A human click on a recipient's own link, placed as it is inserted.
        self.placed = _Compiled(PLACED_INSERT, dialect)
        self.hot = hot
        #: Where connections are opened: the hot path's engine when given.
        self.source = hot.engine if hot is not None else engine
        self.engine = engine
        self.lock = _write_lock(engine)
        self.sql = self.insert.sql
        self._local = threading.local()
        self._connections: list[Any] = []
        self._compiled: dict[Any, _Compiled] = {}
        self.checkpointer = WalGuard(engine, wal_limit, self.lock) if _is_sqlite_file(engine) else None
        #: On a server database, clicks written at once by several threads
        #: share a transaction (SQLite's own lock serializes its writers).
        self.group = None if dialect.name == "sqlite" else GroupCommit(self._execute, self._execute_many,
                                                                        is_integrity_error)
        #: Whether a transaction's statements go out together (psycopg's
        #: pipeline mode, which needs libpq 14).
        self._pipelined = _pipeline_supported(engine)
        event.listen(engine, "engine_disposed", self.close)

    def params(self, row: dict[str, Any]):
        """``row`` as the plain ``INSERT``'s DBAPI parameters."""
        return self.insert.params(row)

    def _connection(self):
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # first use, or forked
            fairy = self.source.raw_connection()
            fairy.detach()
            connection = fairy.dbapi_connection
            # Each INSERT is its own transaction: one statement, no BEGIN
            # and COMMIT round trips.
            if self.engine.dialect.name == "sqlite":
                connection.isolation_level = None
                local.autocommit = True
                if self.hot is not None:
                    # The statement timeout: how long a write waits for
                    # another writer before the click is spooled instead.
                    connection.execute(f"PRAGMA busy_timeout={max(1, int(self.hot.statement_timeout * 1000))}")
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

    def write(self, row: dict[str, Any], *, place: bool = False) -> None:
        """Insert and commit ``row``; through the hot path's breaker when
        there is one (:class:`~.hotdb.DatabaseUnavailable` while it is open).

        With ``place`` (a human click on a recipient's own link), the
        database sets the stored click's ``is_first`` and ``kind`` from the
        recipient's first human click in the same statement; ``row`` keeps
        the values it came with.
        """
        statement = self.placed if place else self.insert
        hot = self.hot
        if hot is None:
            self._write(statement.sql, statement.params(row))
            return
        breaker = hot.breaker
        if not breaker.allow():
            raise DatabaseUnavailable("the database failed a moment ago")
        params = statement.params(row)
        try:
            try:
                self._write(statement.sql, params)
            except _Dropped:
                # A connection the server had closed: once more, on a new one.
                try:
                    self._write(statement.sql, params)
                except Exception as err:
                    if not is_integrity_error(err):
                        raise
                    # The first try was stored after all: its click id is taken.
        except Exception as err:
            if not is_integrity_error(err):  # a refusal is no outage
                breaker.failure(err)
            raise
        breaker.success()

    def compile(self, statement) -> _Compiled:
        """``statement`` compiled for this writer's database, for :meth:`first`;
        compiled once per writer (statements are module constants)."""
        compiled = self._compiled.get(statement)
        if compiled is None:
            compiled = self._compiled[statement] = _Compiled(statement, self.engine.dialect)
        return compiled

    def first(self, query: _Compiled, params: dict[str, Any]):
        """The first row of ``query`` (from :meth:`compile`), or ``None``, read
        on this thread's click connection: no pool checkout and no statement
        compilation, the hot path's timeouts and breaker, and once more on a
        new connection when the server had dropped this one. Any failure
        raises :class:`~.hotdb.DatabaseUnavailable`, as ``HotPath.run`` does."""
        hot = self.hot
        if hot is not None and not hot.breaker.allow():
            raise DatabaseUnavailable("the database failed a moment ago")
        values = query.params(params)
        try:
            try:
                rows = self._execute(query.sql, values, read=True)
            except _Dropped:
                rows = self._execute(query.sql, values, read=True)
        except Exception as err:
            if hot is not None:
                hot.breaker.failure(err)
            raise DatabaseUnavailable(str(err).splitlines()[0] if str(err) else type(err).__name__) from err
        if hot is not None:
            hot.breaker.success()
        return query.make_row(rows[0]) if rows else None

    def _write(self, sql: str, params) -> None:
        if self.group is not None:
            self.group.write(sql, params)
        else:
            self._execute(sql, params)

    def _execute_many(self, writes) -> None:
        """``writes`` (statements and their parameters) in one transaction."""
        self._execute(None, writes)

    def _execute(self, sql: str | None, params, read: bool = False):
        """``sql`` with ``params``; with ``sql`` ``None``, ``params`` is a
        list of statements and their parameters, written in one transaction
        (each statement's rows sent together)."""
        connection = self._connection()
        cursor = None
        start = time.monotonic()
        rows = None
        try:
            # A read takes no write lock; it fetches every row, which ends
            # SQLite's read transaction at once.
            with contextlib.nullcontext() if read else self.lock, self._guard(connection):
                cursor = connection.cursor()
                if sql is not None:
                    cursor.execute(sql, params)
                else:
                    self._transaction(cursor, params)
                if read:
                    rows = cursor.fetchall()
                if not self._local.autocommit:
                    connection.commit()
            if self.checkpointer is not None and not read:
                self.checkpointer.wrote()
            return rows
        except Exception as err:
            if not self._local.autocommit:
                with contextlib.suppress(Exception):
                    connection.rollback()
            elif sql is None:  # the transaction this method began
                with contextlib.suppress(Exception), contextlib.closing(connection.cursor()) as undo:
                    undo.execute("ROLLBACK")
            if self.engine.dialect.is_disconnect(err, connection, cursor) or server_closed(err):
                self._drop(connection)
                if self.hot is not None:
                    # The pool's other connections are as stale: close them,
                    # so that the retry (and the lookups) open new ones.
                    with contextlib.suppress(Exception):
                        self.source.pool.dispose()
                if self.hot is not None and time.monotonic() - start < self.hot.statement_timeout / 2:
                    raise _Dropped() from err
            raise
        finally:
            if cursor is not None:
                with contextlib.suppress(Exception):
                    cursor.close()

    def _transaction(self, cursor, writes) -> None:
        together: dict[str, list] = {}
        for sql, params in writes:
            together.setdefault(sql, []).append(params)
        # psycopg 3 on libpq 14 or newer: one round trip for all of it.
        with cursor.connection.pipeline() if self._pipelined else contextlib.nullcontext():
            if self._local.autocommit:
                cursor.execute("BEGIN")
            for sql, rows in together.items():
                cursor.executemany(sql, rows)
            if self._local.autocommit:
                cursor.execute("COMMIT")

    def _guard(self, connection):
        if self.hot is None:
            return contextlib.nullcontext()
        return self.hot.guard(connection)

    def close(self, *_args) -> None:
        """Close every connection this writer opened."""
        if self.checkpointer is not None:
            self.checkpointer.stop()
        while self._connections:
            with contextlib.suppress(Exception):
                self._connections.pop().close()
        self._local = threading.local()
