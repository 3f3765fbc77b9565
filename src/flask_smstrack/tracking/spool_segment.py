"""Spool segments: fixed-size files, preallocated when they are made, that
hold framed, checksummed records.

A segment starts with a header (``SMSSPOOL``, the format version, the
segment's generation and its size), then records, one after another::

    magic "SPR1" | generation u32 | length u32 | crc32 u32 | state u8 | kind u8 | 2 bytes | payload

The CRC covers the generation, the length, the kind and the payload; the
state byte (``0`` waiting, ``1`` replayed, ``2`` rejected) is written in place
when a record has been replayed, and is not covered. Zeros end the records
(the file is preallocated with zeros); a frame that is not whole and right
is skipped up to the next whole frame: a write torn by a crash loses that
record's partial bytes and nothing else. A segment whose records were all
replayed is zeroed and reused with the next generation.

Every segment is owned by one process, which holds a shared ``flock`` on it
for its lifetime. Another process that gets an exclusive lock on a segment
knows its owner is gone, and is the only one replaying it.
"""
from __future__ import annotations

import errno
import fcntl
import os
import secrets
import struct
import weakref
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

HEADER = struct.Struct("<8sHIQ")
HEADER_SIZE = 64
MAGIC = b"SMSSPOOL"
VERSION = 1

FRAME = struct.Struct("<4sIIIBB2x")
FRAME_MAGIC = b"SPR1"
#: Where the state byte sits in a frame.
STATE_AT = 16

WAITING, REPLAYED, REJECTED = 0, 1, 2
CLICK, CONVERSION, LANDING = 1, 2, 3

SUFFIX = ".seg"
#: How far past a damaged frame the reader looks for the next whole one.
RESYNC_WINDOW = 256 * 1024


@dataclass(frozen=True, slots=True)
class Record:
    offset: int
    state: int
    kind: int
    payload: bytes


def frame(generation: int, kind: int, payload: bytes) -> bytes:
    """One record, framed for ``generation``."""
    crc = zlib.crc32(struct.pack("<IIB", generation, len(payload), kind) + payload)
    return FRAME.pack(FRAME_MAGIC, generation, len(payload), crc, WAITING, kind) + payload


def _preallocate(fd: int, size: int) -> None:
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as err:
        if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        # A filesystem without fallocate: write the zeros instead.
        zeros = bytes(1 << 20)
        for start in range(0, size, len(zeros)):
            os.pwrite(fd, zeros[: min(len(zeros), size - start)], start)


class Segment:
    """One open segment file."""

    def __init__(self, path: str, fd: int) -> None:
        self.path, self.fd = path, fd
        # A segment dropped without close() (an app torn down) closes its file.
        self._closer = weakref.finalize(self, os.close, fd)
        magic, version, self.generation, self.size = HEADER.unpack(os.pread(fd, HEADER.size, 0))
        if magic != MAGIC or version != VERSION:
            raise ValueError(f"{path} is not a spool segment")
        #: Where the next record goes (the owner keeps it).
        self.end = HEADER_SIZE
        #: Damaged frames skipped by :meth:`records`.
        self.damaged = 0

    @classmethod
    def create(cls, directory: str, size: int) -> Segment:
        """A new segment of ``size`` bytes in ``directory``, preallocated and
        on disk (the file and its directory entry) before it is returned,
        locked shared by this process (its owner)."""
        os.makedirs(directory, exist_ok=True)
        name = f"spool-{os.getpid()}-{secrets.token_hex(4)}"
        temp = os.path.join(directory, f".{name}.new")
        fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            _preallocate(fd, size)
            os.pwrite(fd, HEADER.pack(MAGIC, VERSION, 1, size), 0)
            os.fsync(fd)
            fcntl.flock(fd, fcntl.LOCK_SH)
            path = os.path.join(directory, name + SUFFIX)
            os.rename(temp, path)
            _sync_dir(directory)
        except BaseException:
            os.close(fd)
            _unlink(temp)
            raise
        return cls(path, fd)

    @classmethod
    def open(cls, path: str) -> Segment:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            return cls(path, fd)
        except BaseException:
            os.close(fd)
            raise

    def try_lock(self) -> bool:
        """Take the exclusive lock, without waiting: only when no owner and
        no other replayer holds this segment."""
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def append(self, data: bytes) -> int:
        """Write ``data`` (whole frames) at the end and make it durable;
        returns its offset. ``OSError`` when it does not fit or fails."""
        offset = self.end
        if offset + len(data) > self.size:
            raise OSError(errno.ENOSPC, "spool segment full", self.path)
        written = os.pwrite(self.fd, data, offset)
        if written != len(data):
            raise OSError(errno.EIO, "short write to the spool", self.path)
        os.fdatasync(self.fd)
        self.end = offset + len(data)
        return offset

    def records(self) -> Iterator[Record]:
        """Every whole record of this generation, in order. Zeros end the
        records; a frame that is torn or damaged is skipped by looking for
        the next whole frame within :data:`RESYNC_WINDOW` bytes (a torn tail
        has none)."""
        offset = HEADER_SIZE
        while offset + FRAME.size <= self.size:
            record = self._read(offset)
            if record is None:
                if not any(os.pread(self.fd, FRAME.size, offset)):
                    return
                self.damaged += 1
                offset = self._resync(offset + 1)
                if offset is None:
                    return
                continue
            yield record
            offset = record.offset + FRAME.size + len(record.payload)

    def _read(self, offset: int) -> Record | None:
        head = os.pread(self.fd, FRAME.size, offset)
        if len(head) < FRAME.size:
            return None
        magic, generation, length, crc, state, kind = FRAME.unpack(head)
        if magic != FRAME_MAGIC or generation != self.generation or offset + FRAME.size + length > self.size:
            return None
        payload = os.pread(self.fd, length, offset + FRAME.size)
        if zlib.crc32(struct.pack("<IIB", generation, length, kind) + payload) != crc:
            return None
        return Record(offset, state, kind, payload)

    def _resync(self, start: int) -> int | None:
        window = os.pread(self.fd, min(RESYNC_WINDOW, self.size - start), start)
        at = window.find(FRAME_MAGIC)
        while at >= 0:
            if self._read(start + at) is not None:
                return start + at
            at = window.find(FRAME_MAGIC, at + 1)
        return None

    def mark(self, offset: int, state: int) -> None:
        """Set a record's state (not yet durable: see :meth:`sync`)."""
        os.pwrite(self.fd, bytes([state]), offset + STATE_AT)

    def sync(self) -> None:
        os.fdatasync(self.fd)

    def reset(self) -> None:
        """Start over (every record replayed): the used bytes zeroed and a
        new generation, on disk before any record of it is written."""
        zeros = bytes(1 << 20)
        for start in range(HEADER_SIZE, self.end, len(zeros)):
            os.pwrite(self.fd, zeros[: min(len(zeros), self.end - start)], start)
        self.generation += 1
        os.pwrite(self.fd, HEADER.pack(MAGIC, VERSION, self.generation, self.size), 0)
        os.fdatasync(self.fd)
        self.end = HEADER_SIZE

    def close(self) -> None:
        self._closer()
        self.fd = -1

    def remove(self) -> None:
        _unlink(self.path)
        self.close()


def segment_paths(directory: str) -> list[str]:
    """The segments in ``directory``, by name."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(os.path.join(directory, n) for n in names if n.startswith("spool-") and n.endswith(SUFFIX))


def _sync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
