"""Group commit: clicks that threads of one process write at the same moment
share one transaction, so that one flush of the database's log makes them
all durable.

With durable commits each transaction waits for the log to reach the disk
(milliseconds on a virtual disk), which caps a connection at a few hundred
commits a second. Here the first thread to write leads: it writes what is
waiting as one transaction while the threads that come meanwhile queue
behind it; when it is done it hands the lead to the first of those, whose
transaction then holds everyone who queued. A thread alone (a sync worker)
writes its click as before, in one statement.

Each thread still gets its own answer: a transaction that fails because the
database is unreachable fails every click in it (each is then spooled), and
the clicks that queued meanwhile with it, so that none waits out a second
timeout; one that a row refuses (a click id already stored) is written again
row by row, so that only that row fails.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Sequence

#: A statement and its parameters.
Write = tuple[str, Any]


class _Entry:
    __slots__ = ("write", "done", "lead", "error")

    def __init__(self, write: Write) -> None:
        self.write = write
        self.done = threading.Event()
        self.lead = False
        self.error: BaseException | None = None


class GroupCommit:
    """Runs each :meth:`write` alone or in one transaction with the writes
    of other threads that came while the last transaction ran.

    ``one(sql, params)`` writes one row in its own transaction;
    ``many(writes)`` writes several in one, all or nothing; ``refused(err)``
    tells whether an error is a row's refusal (written again row by row)
    rather than a failure of the database.
    """

    def __init__(self, one: Callable[[str, Any], None], many: Callable[[Sequence[Write]], None],
                 refused: Callable[[BaseException], bool], max_batch: int = 64) -> None:
        self._one, self._many, self._refused = one, many, refused
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: list[_Entry] = []
        self._busy = False
        #: Transactions written and rows in them, for the benchmark.
        self.transactions = self.rows = 0

    def write(self, sql: str, params: Any) -> None:
        entry = _Entry((sql, params))
        with self._lock:
            self._waiting.append(entry)
            lead, self._busy = not self._busy, True
        if not lead:
            entry.done.wait()
        if lead or entry.lead:
            self._lead()
        if entry.error is not None:
            raise entry.error

    def _lead(self) -> None:
        with self._lock:
            batch = self._waiting[: self.max_batch]
            del self._waiting[: len(batch)]
        failed: BaseException | None = None
        finished = False
        try:
            failed = self._run(batch)
            finished = True
        finally:
            if not finished:  # interrupted (the worker is exiting): no click passes for written
                failed = RuntimeError("the click's transaction was interrupted")
                for entry in batch:
                    if entry.error is None:
                        entry.error = failed
            for entry in batch:
                entry.done.set()
            with self._lock:
                if failed is not None:
                    # Those who came while the database failed fail with it
                    # now (and are spooled) instead of waiting out another
                    # timeout each.
                    for entry in self._waiting:
                        entry.error = failed
                        entry.done.set()
                    self._waiting.clear()
                if self._waiting:
                    after = self._waiting[0]
                    after.lead = True
                    after.done.set()
                else:
                    self._busy = False

    def _run(self, batch: list[_Entry]) -> BaseException | None:
        """Write ``batch``; the error of a database that failed, if it did."""
        self.transactions += 1
        self.rows += len(batch)
        if len(batch) > 1:
            try:
                self._many([entry.write for entry in batch])
                return None
            except Exception as err:  # noqa: BLE001 - handed to each thread below
                if not self._refused(err):
                    for entry in batch:
                        entry.error = err
                    return err
        failed = None
        for entry in batch:
            try:
                self._one(*entry.write)
            except Exception as err:  # noqa: BLE001 - raised in the entry's own thread
                entry.error = err
                if not self._refused(err):
                    failed = err
        return failed
