"""Background, batched writer of served predictions: off the request path, nothing lost.

Requests only append to an in-memory queue. One thread wakes every `flush_seconds` (never per
request: a thread woken per request takes the interpreter lock from the request path each time)
and writes what has queued, in chunks of `batch_size`; if the store is down the rows are kept
and retried with backoff, and only rows beyond `max_buffered` are dropped,
counted and reported (never silently). `close()` flushes everything before shutdown.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

Row = dict[str, Any]
Writer = Callable[[Sequence[Row]], None]


class PredictionLogger:
    def __init__(
        self,
        write: Writer,
        batch_size: int = 1000,
        flush_seconds: float = 0.2,
        max_buffered: int = 1_000_000,
    ) -> None:
        self._write = write
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.max_buffered = max_buffered
        self._queue: queue.SimpleQueue[list[Row]] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self.enqueued = 0
        self.written = 0
        self.dropped = 0
        self.write_errors = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def log(self, rows: list[Row]) -> None:
        with self._lock:
            self.enqueued += len(rows)
        self._queue.put(rows)

    def close(self, timeout: float = 60.0) -> None:
        """Write every queued row, then stop the writer thread."""
        self._closing.set()
        self._thread.join(timeout=timeout)

    def stats(self) -> dict[str, object]:
        with self._lock:
            pending = self.enqueued - self.written - self.dropped
            return {
                "enqueued": self.enqueued,
                "written": self.written,
                "pending": pending,
                "dropped": self.dropped,
                "write_errors": self.write_errors,
                "last_error": self.last_error,
            }

    def _run(self) -> None:
        pending: list[Row] = []
        backoff = 0.0
        while True:
            if self._closing.is_set():
                time.sleep(backoff)  # store down at shutdown: retry on the backoff, not in a spin
            else:
                self._closing.wait(backoff or self.flush_seconds)
            closing = self._closing.is_set()
            self._drain(pending)
            if pending and self._flush(pending):
                backoff = 0.0
            elif pending:
                backoff = min(max(backoff * 2, 0.5), 10.0)
                if closing and backoff >= 10.0:
                    self._drop(len(pending), "store unavailable at shutdown")
                    pending.clear()
            if closing and not pending:
                return

    def _drain(self, pending: list[Row]) -> None:
        while True:
            try:
                pending.extend(self._queue.get_nowait())
            except queue.Empty:
                return

    def _flush(self, pending: list[Row]) -> bool:
        """Write `pending` in chunks; True when all of it is stored (what failed stays)."""
        while pending:
            chunk = pending[: self.batch_size]
            if not self._write_chunk(chunk, len(pending)):
                overflow = len(pending) - self.max_buffered
                if overflow > 0:
                    self._drop(overflow, "buffer full")
                    del pending[:overflow]
                return False
            del pending[: len(chunk)]
        return True

    def _write_chunk(self, chunk: list[Row], kept: int) -> bool:
        try:
            self._write(chunk)
        except Exception as exc:  # the store may be down: keep the rows and retry
            with self._lock:
                self.write_errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("prediction store write failed (%d rows kept): %s", kept, exc)
            return False
        with self._lock:
            self.written += len(chunk)
        return True

    def _drop(self, count: int, why: str) -> None:
        with self._lock:
            self.dropped += count
        log.error("dropped %d prediction rows: %s", count, why)
