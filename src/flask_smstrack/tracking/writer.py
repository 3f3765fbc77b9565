"""The click writer: one precompiled INSERT per click on a connection kept
per thread, a write lock for SQLite files shared by every worker, and a
background WAL checkpointer (:mod:`.walguard`)."""
from __future__ import annotations

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
from sqlalchemy import event, insert

from ..models import Click
from .hotdb import DatabaseUnavailable, HotPath, is_integrity_error, server_closed
from .walguard import WalGuard

logger = logging.getLogger("flask_smstrack")

_clicks = Click.__table__


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

    COLUMNS = tuple(c.name for c in _clicks.columns if c.name != "id")

    #: Default largest size of a SQLite file's write-ahead log, in bytes.
    WAL_LIMIT = 64 * 1024 * 1024

    def __init__(self, engine, *, sync_commit: bool = True, wal_limit: int = WAL_LIMIT,
                 hot: HotPath | None = None) -> None:
        dialect = engine.dialect
        self.sync_commit = sync_commit
        compiled = insert(_clicks).compile(dialect=dialect, column_keys=list(self.COLUMNS))
        self.hot = hot
        #: Where connections are opened: the hot path's engine when given.
        self.source = hot.engine if hot is not None else engine
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
        self.checkpointer = WalGuard(engine, wal_limit, self.lock) if _is_sqlite_file(engine) else None
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

    def write(self, row: dict[str, Any]) -> None:
        """Insert and commit ``row``; through the hot path's breaker when
        there is one (:class:`~.hotdb.DatabaseUnavailable` while it is open)."""
        hot = self.hot
        if hot is None:
            self._write(self.params(row))
            return
        breaker = hot.breaker
        if not breaker.allow():
            raise DatabaseUnavailable("the database failed a moment ago")
        params = self.params(row)
        try:
            try:
                self._write(params)
            except _Dropped:
                # A connection the server had closed: once more, on a new one.
                try:
                    self._write(params)
                except Exception as err:
                    if not is_integrity_error(err):
                        raise
                    # The first try was stored after all: its click id is taken.
        except Exception as err:
            if not is_integrity_error(err):  # a refusal is no outage
                breaker.failure(err)
            raise
        breaker.success()

    def _write(self, params) -> None:
        connection = self._connection()
        cursor = None
        start = time.monotonic()
        try:
            with self.lock, self._guard(connection):
                cursor = connection.cursor()
                cursor.execute(self.sql, params)
                if not self._local.autocommit:
                    connection.commit()
            if self.checkpointer is not None:
                self.checkpointer.wrote()
        except Exception as err:
            if not self._local.autocommit:
                with contextlib.suppress(Exception):
                    connection.rollback()
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
