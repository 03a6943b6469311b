"""The prediction log: every answered prediction is journaled on disk before its answer leaves
(`serving/journal.py`) and shipped to the prediction store in the background.

`log(rows)` is called by the group commit thread (`serving/group_commit.py`) with the rows of
every request waiting, so concurrent requests share one `fdatasync`. One shipper thread wakes
every `flush_seconds` (never per request: a thread woken per request takes the interpreter lock
from the request path each time), seals the journal's open segment and writes sealed segments
to the store in chunks of `batch_size`. If the store is down, segments stay on disk and are
retried with backoff; nothing is dropped. A stop, graceful or not, leaves unshipped segments
on disk for the next worker to adopt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from serving.journal import PredictionJournal

log = logging.getLogger(__name__)

Row = Sequence[Any]
Writer = Callable[[Sequence[Row]], None]
MAX_BACKOFF_SECONDS = 10.0


class PredictionLogger:
    def __init__(
        self,
        write: Writer,
        journal: PredictionJournal,
        batch_size: int = 1000,
        flush_seconds: float = 0.2,
    ) -> None:
        self._write = write
        self.journal = journal
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._ship_lock = threading.Lock()  # the shipper thread and `flush` take turns
        self.written = 0
        self.refused = 0
        self.write_errors = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def log(self, rows: list[Row]) -> None:
        """Journal `rows` durably; `JournalFull` when the journal is at its limit."""
        try:
            self.journal.append(rows)
        except Exception:
            with self._lock:
                self.refused += len(rows)
            raise

    def flush(self, timeout: float = 5.0) -> bool:
        """Ship what is journaled now; True when the store has it all within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            self.journal.seal()
            if self._ship_all():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def close(self, timeout: float = 60.0) -> None:
        """Ship what the store takes, then stop; the rest stays journaled for the next start."""
        self._closing.set()
        self._thread.join(timeout=timeout)
        self.journal.close()

    def stats(self) -> dict[str, object]:
        journal = self.journal.stats()
        with self._lock:
            return {
                "enqueued": self.journal.appended_rows + self.journal.adopted_rows,
                "written": self.written,
                "pending": self.journal.pending_rows,
                "refused": self.refused,
                "write_errors": self.write_errors,
                "last_error": self.last_error,
                "journal": journal,
            }

    def _run(self) -> None:
        backoff = 0.0
        while True:
            self._closing.wait(backoff or self.flush_seconds)
            closing = self._closing.is_set()
            self.journal.seal()
            shipped = self._ship_all()
            backoff = 0.0 if shipped else min(max(backoff * 2, 0.5), MAX_BACKOFF_SECONDS)
            if closing:
                return

    def _ship_all(self) -> bool:
        """Write every sealed segment, oldest first; False at the first failure (kept)."""
        with self._ship_lock:
            while (item := self.journal.next_segment()) is not None:
                segment, rows = item
                while segment.shipped_rows < len(rows):
                    chunk = rows[segment.shipped_rows : segment.shipped_rows + self.batch_size]
                    if not self._write_chunk(chunk):
                        return False
                    segment.shipped_rows += len(chunk)
                self.journal.shipped(segment)
            return True

    def _write_chunk(self, chunk: Sequence[Row]) -> bool:
        try:
            self._write(chunk)
        except Exception as exc:  # the store may be down: the rows stay journaled
            with self._lock:
                self.write_errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning(
                "prediction store write failed (%d rows kept on disk): %s",
                self.journal.pending_rows,
                exc,
            )
            return False
        with self._lock:
            self.written += len(chunk)
        return True
