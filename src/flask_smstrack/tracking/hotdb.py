"""The database as the redirect uses it: short timeouts, a circuit breaker,
and one retry on a connection the server dropped.

A click must never wait long for the database. On PostgreSQL the link
lookup, the click's joins and the click writer use an engine of their own
(the dashboard's and reports' connections keep their normal timeouts):

- **connect timeout** (``SMSTRACK_DB_CONNECT_TIMEOUT``): libpq and psycopg
  never wait less than 2 s for a connection, so the connection is made on a
  short-lived thread and the request gives up on it after the timeout (the
  thread closes the connection, should it come late, within psycopg's 2 s).
- **statement timeout** (``SMSTRACK_DB_STATEMENT_TIMEOUT``): the server's
  ``statement_timeout``, and, because a hung (stopped) server cannot time
  anything out, a watchdog thread that shuts the socket of a statement
  overrunning it by :attr:`Watchdog.GRACE`: psycopg then fails at once.
- the pool hands out a connection after waiting at most the connect
  timeout; connections are in autocommit, so returning one to the pool
  costs no round trip.

On SQLite the statement timeout is the click writer's busy timeout.

Every use goes through the :class:`~.breaker.Breaker`: a failure opens it,
and while it is open :meth:`HotPath.run` raises :class:`DatabaseUnavailable`
at once.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import threading
import time
from typing import Any, Callable, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy import exc as sa_exc

from .breaker import Breaker

logger = logging.getLogger("flask_smstrack")

T = TypeVar("T")


class DatabaseUnavailable(Exception):
    """The hot path cannot use the database now (the breaker is open, or the
    database failed): serve from the cache, spool the click."""


def is_integrity_error(err: BaseException) -> bool:
    """A constraint said no: the database works (a click id stored twice)."""
    if isinstance(err, sa_exc.IntegrityError):
        return True
    return type(err).__name__ in ("IntegrityError", "UniqueViolation")


class Watchdog:
    """Shuts the socket of a statement still running past its deadline.

    A stopped server neither answers nor times out, and psycopg waits on its
    socket for ever; a shut socket makes psycopg fail at once, and the
    connection is discarded. One thread per process, sleeping while no
    statement runs; registering a statement is a dict insert under a lock.
    """

    #: Seconds past the statement timeout before the socket is shut: the
    #: server's own ``statement_timeout`` answers first when it can.
    GRACE = 0.1

    #: Seconds between the thread's looks while statements run: a cut
    #: comes at most this late.
    TICK = 0.05
    #: Seconds without statements before the thread sleeps until the next.
    LINGER = 1.0

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._due: dict[int, tuple[float, int]] = {}
        self._next = 0
        self._pid: int | None = None
        self._idle = False
        self._last = 0.0
        self.fired = 0

    def _start(self) -> None:
        self._pid = os.getpid()
        self._idle = False
        threading.Thread(target=self._run, name="smstrack-watchdog", daemon=True).start()

    @contextlib.contextmanager
    def guard(self, fileno: int, seconds: float):
        """Shut ``fileno`` if the block has not ended after ``seconds``."""
        with self._cond:
            if self._pid != os.getpid():  # first use, or forked
                self._start()
            self._next += 1
            token = self._next
            self._last = now = time.monotonic()
            self._due[token] = (now + seconds, fileno)
            if self._idle:
                # Woken once per idle spell, not per statement.
                self._idle = False
                self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._due.pop(token, None)

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                now = time.monotonic()
                if self._due:
                    late = [t for t, (due, _) in self._due.items() if due <= now]
                    for token in late:
                        _, fileno = self._due.pop(token)
                        # Under the lock: the statement's thread cannot have
                        # returned (and closed the connection) meanwhile.
                        self._shut(fileno)
                    wait = min((due for due, _ in self._due.values()), default=now + self.TICK) - now
                elif now - self._last < self.LINGER:
                    wait = self.TICK  # statements keep coming: no wake-up for each
                else:
                    self._idle = True
                    cond.wait()
                    continue
            time.sleep(min(max(wait, 0.005), self.TICK))

    def _shut(self, fileno: int) -> None:
        self.fired += 1
        try:
            # A duplicate of the descriptor: shutting it down shuts the
            # connection, and closing it leaves psycopg's descriptor alone.
            with socket.socket(fileno=os.dup(fileno)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
            logger.warning("A database statement on the click path overran its timeout: its connection was cut.")
        except OSError:
            pass


class _Late:
    """A connection attempt the caller gave up on: closed when it arrives."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.given_up = False
        self.lock = threading.Lock()
        self.result: Any = None
        self.error: BaseException | None = None


def connect_within(connect: Callable[[], Any], timeout: float, error: type[Exception]) -> Any:
    """``connect()`` on a thread of its own, given up after ``timeout``
    seconds with ``error``; a connection that arrives later is closed."""
    late = _Late()

    def attempt() -> None:
        try:
            result = connect()
        except BaseException as err:  # noqa: BLE001 - handed to the caller
            late.error = err
            result = None
        with late.lock:
            late.result = result
            late.done.set()
            if late.given_up and result is not None:
                with contextlib.suppress(Exception):
                    result.close()

    threading.Thread(target=attempt, name="smstrack-connect", daemon=True).start()
    if not late.done.wait(timeout):
        with late.lock:
            if not late.done.is_set():
                late.given_up = True
                raise error(f"could not connect to the database within {timeout:g} s")
    if late.error is not None:
        raise late.error
    return late.result


class HotPath:
    """The redirect's way to the database: one per app and process.

    :param engine: the app's engine. On PostgreSQL an engine of its own is
        made from its URL (and ``connect_args``); other databases use it.
    """

    def __init__(self, engine, *, connect_timeout: float, statement_timeout: float,
                 connect_args: dict[str, Any] | None = None) -> None:
        self.connect_timeout = float(connect_timeout)
        self.statement_timeout = float(statement_timeout)
        self.breaker = Breaker(probe_timeout=self.connect_timeout + self.statement_timeout + 1.0)
        self.watchdog: Watchdog | None = None
        self.app_engine = engine
        if engine.dialect.name == "postgresql":
            self.watchdog = Watchdog()
            self.engine = self._postgresql_engine(engine, connect_args or {})
            event.listen(engine, "engine_disposed", lambda *_: self.engine.dispose())
        else:
            self.engine = engine

    def _postgresql_engine(self, engine, connect_args: dict[str, Any]):
        args = dict(connect_args)
        # psycopg's own floor; the request gives up sooner (connect_within).
        args["connect_timeout"] = max(2, math.ceil(self.connect_timeout))
        hot = create_engine(
            engine.url,
            connect_args=args,
            isolation_level="AUTOCOMMIT",
            pool_timeout=self.connect_timeout,
            pool_size=5,
            max_overflow=20,
        )
        timeout, statement_ms = self.connect_timeout, max(1, int(self.statement_timeout * 1000))

        @event.listens_for(hot, "do_connect")
        def _connect(dialect, _record, cargs, cparams):
            return connect_within(lambda: dialect.connect(*cargs, **cparams), timeout,
                                  dialect.loaded_dbapi.OperationalError)

        @event.listens_for(hot, "connect")
        def _on_connect(dbapi_connection, _record):
            # A SET, not a startup option: PgBouncer refuses those.
            with self.guard(dbapi_connection):
                cursor = dbapi_connection.cursor()
                cursor.execute(f"SET statement_timeout = {statement_ms}")
                cursor.close()
                dbapi_connection.commit()

        @event.listens_for(hot, "before_cursor_execute")
        def _before(conn, cursor, statement, parameters, context, executemany):
            conn.info["smstrack_guard"] = guard = self.guard(conn.connection.dbapi_connection)
            guard.__enter__()

        def _end(conn) -> None:
            guard = conn.info.pop("smstrack_guard", None)
            if guard is not None:
                guard.__exit__(None, None, None)

        event.listen(hot, "after_cursor_execute", lambda conn, *_: _end(conn))

        @event.listens_for(hot, "handle_error")
        def _error(context):
            if context.connection is not None:
                _end(context.connection)
            if server_closed(context.original_exception):
                # A disconnect, whether or not psycopg has marked the
                # connection broken yet: SQLAlchemy then drops every pooled
                # connection made before it (a restart leaves them all stale).
                context.is_disconnect = True

        return hot

    def guard(self, dbapi_connection):
        """The watchdog's guard for one statement on ``dbapi_connection``
        (nothing on SQLite)."""
        watchdog = self.watchdog
        if watchdog is None:
            return contextlib.nullcontext()
        try:
            fileno = dbapi_connection.fileno()
        except Exception:
            return contextlib.nullcontext()
        return watchdog.guard(fileno, self.statement_timeout + Watchdog.GRACE)

    def run(self, work: Callable[[Any], T]) -> T:
        """``work(connection)`` on a hot-path connection, through the breaker.

        A pooled connection that the server dropped (a restart) fails at
        once: the work is tried once more on a new connection. Any other
        failure opens the breaker and raises :class:`DatabaseUnavailable`.
        """
        breaker = self.breaker
        if not breaker.allow():
            raise DatabaseUnavailable("the database failed a moment ago")
        for attempt in (1, 2):
            start = time.monotonic()
            try:
                with self.engine.connect() as conn:
                    result = work(conn)
            except Exception as err:
                if attempt == 1 and _dropped(err) and time.monotonic() - start < self.statement_timeout:
                    continue
                breaker.failure(err)
                raise DatabaseUnavailable(str(err).splitlines()[0] if str(err) else type(err).__name__) from err
            breaker.success()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def snapshot(self) -> dict[str, Any]:
        out = self.breaker.snapshot()
        out["connect_timeout_s"] = self.connect_timeout
        out["statement_timeout_s"] = self.statement_timeout
        return out


def _dropped(err: BaseException) -> bool:
    """A connection the server had closed: SQLAlchemy saw a disconnect (the
    engine's ``handle_error`` hook counts a server ending the connection as
    one, see :func:`server_closed`)."""
    return isinstance(err, sa_exc.DBAPIError) and bool(err.connection_invalidated)


#: SQLSTATEs a server sends as it ends a connection: an administrator's or a
#: crash's shutdown, a server still starting, and the connection exceptions.
#: psycopg may raise them before it marks the connection broken, so that
#: SQLAlchemy does not always take them for a disconnect.
_CLOSING_STATES = ("57P01", "57P02", "57P03", "08")


def server_closed(err: BaseException) -> bool:
    """Whether ``err`` (or the DBAPI error it wraps) is the server ending the
    connection."""
    orig = getattr(err, "orig", None) or err
    state = getattr(orig, "sqlstate", None) or ""
    return state.startswith(_CLOSING_STATES)
