"""The prediction journal: answered predictions are on local disk before their answer leaves.

Each group commit (`serving/group_commit.py`) appends the rows of every request waiting as one
JSON line to the worker's open segment file and calls `fdatasync` once for all of them, as
databases do, so a crash right after an
answer cannot lose its row. The shipper (`serving/prediction_log.py`) seals the open segment
every interval, writes sealed segments to the prediction store, and deletes a segment only once
the store has every row of it. Rows are inserted idempotently by request id, so a segment
shipped twice (a crash between the store's commit and the delete) never duplicates.

Every worker owns its segments through an exclusive `flock` on `<owner>.lock`, held for the
process's life. A segment whose owner's lock can be taken (or is gone) belongs to a dead worker:
the next worker to start adopts it and ships it.

Sealed segments keep their rows in memory for the shipper, up to `cached_rows`; older ones are
read back from disk when their turn comes, so a long store outage costs disk, not memory. Disk
is bounded by `max_bytes`: past it, `append` raises `JournalFull` and the service answers 503
rather than answer what it cannot keep.
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
LOCK_SUFFIX = ".lock"


class JournalFull(RuntimeError):
    """The journal holds `max_bytes` already: the store has been away too long."""


# Rows kept in memory for the shipper (~2.5 KiB each as Python tuples): a backlog past this is
# read back from disk. 200k let a worker that could not ship as fast as it answered (1,000-record
# requests, benchmarks/serving.py) grow to 944 MiB; 20k bounds that cache near 50 MiB.
CACHED_ROWS = 20_000


@dataclass
class Segment:
    """A sealed segment file and, while cached, its rows."""

    path: Path
    size: int
    rows: list[Row] | None  # None: read back from `path` when shipped
    row_count: int
    shipped_rows: int = 0  # the leading rows the store already has (a retry resumes there)


class PredictionJournal:
    def __init__(
        self, directory: Path, max_bytes: int = 1 << 30, cached_rows: int = CACHED_ROWS
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.cached_rows = cached_rows
        directory.mkdir(parents=True, exist_ok=True)
        self.owner = uuid.uuid4().hex
        self._lock_file = _hold_lock(directory / f"{self.owner}{LOCK_SUFFIX}")
        self._mutex = threading.Lock()
        self._sequence = 0
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._rows: list[Row] = []
        self._sealed: deque[Segment] = deque()
        self._sealed_bytes = 0
        self._cached = 0
        self.appended_rows = 0
        self.adopted_rows = 0
        self.pending_rows = 0  # journaled, not yet in the store
        self.adopted_segments = self._adopt_orphans()

    # -- the request path ---------------------------------------------------------------------

    def append(self, rows: list[Row]) -> None:
        """Durably append `rows` (one JSON line, one fdatasync) before their answers leave."""
        if not rows:
            return
        # orjson: a tenth of the json module's time, paid once per group commit for every row
        # (NaN is written as null: a missing value, as the store keeps it).
        line = orjson.dumps(rows) + b"\n"
        with self._mutex:
            if self._sealed_bytes + self._size + len(line) > self.max_bytes:
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
            self._rows.extend(rows)
            self.appended_rows += len(rows)
            self.pending_rows += len(rows)

    # -- the shipper's side -------------------------------------------------------------------

    def seal(self) -> None:
        """Close the open segment (when it has rows) and queue it for shipping."""
        with self._mutex:
            if self._fd is None:
                return
            os.close(self._fd)
            segment = Segment(self._path, self._size, self._rows, len(self._rows))
            self._fd, self._path, self._size, self._rows = None, None, 0, []
            self._queue(segment)

    def next_segment(self) -> tuple[Segment, list[Row]] | None:
        """The oldest sealed segment and its rows (read back when not cached)."""
        with self._mutex:
            if not self._sealed:
                return None
            segment = self._sealed[0]
        rows = segment.rows if segment.rows is not None else read_segment(segment.path)
        return segment, rows

    def shipped(self, segment: Segment) -> None:
        """The store has every row of `segment`: delete it."""
        with self._mutex:
            self._sealed.remove(segment)
            self._sealed_bytes -= segment.size
            self.pending_rows -= segment.row_count
            if segment.rows is not None:
                self._cached -= segment.row_count
        segment.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Seal what is open and release the owner lock; unshipped segments stay on disk and
        are adopted by the next worker."""
        self.seal()
        with self._mutex:
            if self._lock_file is not None and not self._sealed:
                Path(self._lock_file.name).unlink(missing_ok=True)
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None

    @property
    def bytes(self) -> int:
        return self._sealed_bytes + self._size

    def stats(self) -> dict[str, object]:
        with self._mutex:
            oldest = _mtime(self._sealed[0].path) if self._sealed else None
            return {
                "directory": str(self.directory),
                "bytes": self._sealed_bytes + self._size,
                "max_bytes": self.max_bytes,
                "segments": len(self._sealed) + (self._fd is not None),
                "oldest_unshipped_seconds": round(time.time() - oldest, 1) if oldest else 0.0,
                "pending_rows": self.pending_rows,
                "appended_rows": self.appended_rows,
                "adopted_segments": self.adopted_segments,
                "adopted_rows": self.adopted_rows,
            }

    # -- internals ----------------------------------------------------------------------------

    def _open_segment(self) -> None:
        self._sequence += 1
        self._path = self.directory / f"{self.owner}-{self._sequence:09d}{SEGMENT_SUFFIX}"
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _sync_directory(self.directory)  # the new file's name survives a power cut too

    def _queue(self, segment: Segment) -> None:
        self._sealed.append(segment)
        self._sealed_bytes += segment.size
        if segment.rows is None:
            return
        self._cached += segment.row_count
        for older in self._sealed:  # past the cache: the oldest are read back from disk later
            if self._cached <= self.cached_rows:
                break
            if older.rows is not None and older is not segment:
                older.rows = None
                self._cached -= older.row_count

    def _adopt_orphans(self) -> int:
        """Queue the segments of workers that are gone (their lock is free or missing)."""
        live = {self.owner}
        for lock in sorted(self.directory.glob(f"*{LOCK_SUFFIX}")):
            owner = lock.name.removesuffix(LOCK_SUFFIX)
            if owner == self.owner:
                continue
            if _owner_alive(lock):
                live.add(owner)
            else:
                lock.unlink(missing_ok=True)
        adopted = 0
        for path in sorted(self.directory.glob(f"*{SEGMENT_SUFFIX}"), key=_segment_order):
            if path.name.split("-", 1)[0] in live:
                continue
            rows = read_segment(path)
            self._queue(Segment(path, path.stat().st_size, None, len(rows)))
            self.adopted_rows += len(rows)
            self.pending_rows += len(rows)
            adopted += 1
        if adopted:
            log.warning(
                "prediction journal: adopted %d segment(s), %d row(s), left by a stopped worker",
                adopted,
                self.adopted_rows,
            )
        return adopted


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


def _segment_order(path: Path) -> tuple[float, str]:
    return _mtime(path) or 0.0, path.name


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


def _hold_lock(path: Path):
    handle = path.open("a")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return handle


def _owner_alive(lock: Path) -> bool:
    try:
        with lock.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False
    except FileNotFoundError:
        return False


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
