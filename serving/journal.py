"""The prediction journal: answered predictions are on local disk before their answer leaves.

Each group commit (`serving/group_commit.py`) appends the rows of every request waiting as one
JSON line to the worker's open segment (`<owner>-<sequence>.part`) and calls `fdatasync` once
for all of them, as databases do, so a crash right after an answer cannot lose its row. Every
interval the open segment is sealed: renamed to `.jsonl`, which is what the shipper
(`serving/shipper.py`, a process of its own) looks for. The shipper writes sealed segments to
the prediction store and deletes one only once the store has every row of it; rows are inserted
idempotently by request id, so a segment shipped twice (a crash between the store's commit and
the delete) never duplicates.

The worker keeps no rows in memory, only each unshipped segment's size and row count, so a
long store outage costs disk, not memory. Disk is bounded by `max_bytes`: past it, `append`
raises `JournalFull` and the service answers 503 rather than answer what it cannot keep.

Every worker owns its segments through an exclusive `flock` on `<owner>.lock`, held for the
process's life. A segment whose owner's lock can be taken (or is gone) belongs to a dead worker:
a shipper takes that lock and ships the segments, open (`.part`) or sealed alike.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

Row = Sequence[Any]
SEGMENT_SUFFIX = ".jsonl"
OPEN_SUFFIX = ".part"
LOCK_SUFFIX = ".lock"


class JournalFull(RuntimeError):
    """The journal holds `max_bytes` already: the store has been away too long."""


@dataclass(frozen=True)
class Sealed:
    """A sealed segment the store may not have yet: what it costs on disk and in rows."""

    sequence: int
    size: int
    rows: int
    opened_at: float  # when its first row was journaled


class PredictionJournal:
    def __init__(self, directory: Path, max_bytes: int = 1 << 30) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self.owner = uuid.uuid4().hex
        self._lock_file = _hold_lock(directory / f"{self.owner}{LOCK_SUFFIX}")
        self._mutex = threading.Lock()
        self._sequence = 0
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._rows = 0
        self._opened_at = 0.0
        self._sealed: deque[Sealed] = deque()
        self._sealed_bytes = 0
        self._sealed_rows = 0
        self.other_bytes = 0  # adopted segments of dead workers the shipper has not shipped
        self.appended_rows = 0

    # -- the request path ---------------------------------------------------------------------

    def append(self, rows: list[Row]) -> None:
        """Durably append `rows` (one JSON line, one fdatasync) before their answers leave."""
        if not rows:
            return
        # orjson: a tenth of the json module's time, paid once per group commit for every row
        # (NaN is written as null: a missing value, as the store keeps it).
        line = orjson.dumps(rows) + b"\n"
        with self._mutex:
            if self.bytes + len(line) > self.max_bytes:
                raise JournalFull(
                    f"prediction journal {self.directory} holds {self.bytes:,} bytes, its limit "
                    f"(CHURNOPS_JOURNAL_MAX_BYTES = {self.max_bytes:,}); the prediction store "
                    "has not taken rows for too long"
                )
            if self._fd is None:
                self._open_segment()
            _write_all(self._fd, line)
            os.fdatasync(self._fd)
            self._size += len(line)
            self._rows += len(rows)
            self.appended_rows += len(rows)

    # -- sealing and what the shipper reports back ----------------------------------------------

    def seal(self) -> int:
        """Close the open segment (when it has rows) and hand it to the shipper by its name;
        the last sealed sequence (0: none yet)."""
        with self._mutex:
            if self._fd is not None:
                os.close(self._fd)
                os.rename(self._path, self._path.with_suffix(SEGMENT_SUFFIX))
                self._sealed.append(Sealed(self._sequence, self._size, self._rows, self._opened_at))
                self._sealed_bytes += self._size
                self._sealed_rows += self._rows
                self._fd, self._path, self._size, self._rows = None, None, 0, 0
            return self._sequence

    def shipped_through(self, sequence: int) -> None:
        """The store has every row of this worker's segments up to `sequence`."""
        with self._mutex:
            while self._sealed and self._sealed[0].sequence <= sequence:
                done = self._sealed.popleft()
                self._sealed_bytes -= done.size
                self._sealed_rows -= done.rows

    def close(self) -> None:
        """Seal what is open and release the owner lock; unshipped segments stay on disk and
        are adopted by the next shipper."""
        self.seal()
        with self._mutex:
            if self._lock_file is not None and not self._sealed:
                Path(self._lock_file.name).unlink(missing_ok=True)
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None

    @property
    def bytes(self) -> int:
        return self._sealed_bytes + self._size + self.other_bytes

    @property
    def pending_rows(self) -> int:
        """This worker's journaled rows the store does not have yet."""
        return self._sealed_rows + self._rows

    def stats(self) -> dict[str, object]:
        with self._mutex:
            oldest = self._sealed[0].opened_at if self._sealed else None
            if oldest is None and self._fd is not None:
                oldest = self._opened_at
            return {
                "directory": str(self.directory),
                "bytes": self.bytes,
                "max_bytes": self.max_bytes,
                "segments": len(self._sealed) + (self._fd is not None),
                "oldest_unshipped_seconds": round(time.time() - oldest, 1) if oldest else 0.0,
                "pending_rows": self._sealed_rows + self._rows,
                "appended_rows": self.appended_rows,
            }

    # -- internals ----------------------------------------------------------------------------

    def _open_segment(self) -> None:
        self._sequence += 1
        self._path = self.directory / f"{self.owner}-{self._sequence:09d}{OPEN_SUFFIX}"
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._opened_at = time.time()
        _sync_directory(self.directory)  # the new file's name survives a power cut too


def segment_sequence(path: Path) -> int:
    """`<owner>-<sequence>.jsonl` -> sequence (0 for a name of another form)."""
    _, _, sequence = path.stem.partition("-")
    return int(sequence) if sequence.isdigit() else 0


def segment_owner(path: Path) -> str:
    return path.name.split("-", 1)[0]


def read_segment(path: Path) -> list[Row]:
    """Every complete line's rows. A torn last line is a write the crash interrupted before its
    fdatasync, so its answers never left: it is skipped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:  # another worker adopted and shipped it meanwhile
        return []
    rows: list[Row] = []
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            rows.extend(orjson.loads(line))
        except orjson.JSONDecodeError:
            log.warning("prediction journal: skipped a torn line in %s", path)
    return rows


def _hold_lock(path: Path, attempts: int = 50):
    """The owner lock, held for the process's life. A shipper checking whether this owner is
    alive holds it for a moment (and, finding no segments, may remove the file): retry, and
    make sure the lock held is on the file that is at `path`."""
    for _ in range(attempts):
        handle = path.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            time.sleep(0.02)
            continue
        try:
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                return handle
        except FileNotFoundError:
            pass
        handle.close()
    raise RuntimeError(f"could not take the prediction journal's owner lock {path}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
