"""The prediction log: every answered prediction is journaled on disk before its answer leaves
(`serving/journal.py`) and shipped to the prediction store in the background.

`log(rows)` is called by the group commit (`serving/group_commit.py`: in the model thread when
no other request waits, else in the journal thread) with the rows of every request waiting, so
concurrent requests share one `fdatasync`. One thread wakes every
`flush_seconds` (never per request: a thread woken per request takes the interpreter lock from
the request path each time), seals the journal's open segment and moves the shipping on:

- `ProcessShipping` (serving): the shipper is a process of its own (`serving/shipper.py`);
  this thread only reads back its status, so shipping costs the worker no interpreter time;
- `ThreadShipping` (tests, tools): the same `SegmentShipper` called in this thread.

If the store is down, segments stay on disk and are retried with backoff; nothing is dropped.
A stop, graceful or not, leaves unshipped segments on disk for the next shipper to adopt.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson

from serving.journal import PredictionJournal
from serving.shipper import SegmentShipper, next_backoff, publish_status, read_status

log = logging.getLogger(__name__)

Row = Sequence[Any]
NOTHING_SHIPPED: dict[str, Any] = {
    "written": 0,
    "write_errors": 0,
    "last_error": None,
    "shipped_through": 0,
    "adopted_segments": 0,
    "adopted_rows": 0,
    "adopted_pending_rows": 0,
    "adopted_pending_bytes": 0,
}


class Shipping(Protocol):
    def tick(self) -> bool:
        """Move shipping on; False when a write to the store failed (back off)."""

    def status(self) -> dict[str, Any]: ...

    def stop(self, timeout: float) -> None: ...


class ThreadShipping:
    """The shipper called in the logger's own thread (and in `flush`)."""

    def __init__(self, shipper: SegmentShipper) -> None:
        self.shipper = shipper
        self._lock = threading.Lock()

    def tick(self) -> bool:
        with self._lock:
            return self.shipper.ship()

    def status(self) -> dict[str, Any]:
        with self._lock:
            return self.shipper.status()

    def stop(self, timeout: float) -> None:
        with self._lock:
            self.shipper.ship()
            self.shipper.release()


class ProcessShipping:
    """The shipper as a child process (restarted if it dies); its status read from disk.

    It starts once there are rows to ship or `start_after` seconds have passed, whichever is
    first: its imports would otherwise compete with the worker's own start for the CPU, and a
    dead worker's segments wait a few seconds at most."""

    def __init__(
        self,
        journal: PredictionJournal,
        store_url: str,
        contract_yaml: str,
        flush_seconds: float = 0.2,
        batch_size: int = 1000,
        start_after: float = 5.0,
    ) -> None:
        self._journal = journal
        self._start_at = time.monotonic() + start_after
        self._command = [
            sys.executable,
            "-m",
            "serving.shipper",
            "--journal",
            str(journal.directory),
            "--owner",
            journal.owner,
            "--flush-seconds",
            str(flush_seconds),
            "--batch-size",
            str(batch_size),
        ]
        self._given = orjson.dumps({"store": store_url, "contract": contract_yaml}) + b"\n"
        self._status: dict[str, Any] = dict(NOTHING_SHIPPED)
        self._stopping = False
        self.restarts = 0
        publish_status(journal.directory, journal.owner, self._status)
        self._process: subprocess.Popen | None = None

    def tick(self) -> bool:
        if not self._stopping:
            self._keep_running()
        self._status = read_status(self._journal.directory, self._journal.owner) or self._status
        return True

    def status(self) -> dict[str, Any]:
        pid = self._process.pid if self._process is not None else None
        return {**self._status, "shipper_pid": pid, "restarts": self.restarts}

    def stop(self, timeout: float) -> None:
        """Close its standard input: the shipper ships once more and exits (started first if
        rows wait)."""
        if self._process is None and self._journal.pending_rows:
            self._process = self._start()
        self._stopping = True
        if self._process is not None and self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self.tick()
        (self._journal.directory / f"{self._journal.owner}.status.json").unlink(missing_ok=True)

    def _keep_running(self) -> None:
        if self._process is None:
            if self._journal.pending_rows or time.monotonic() >= self._start_at:
                self._process = self._start()
        elif self._process.poll() is not None:
            log.warning(
                "prediction shipper exited with %s; starting another", self._process.returncode
            )
            self.restarts += 1
            self._process = self._start()

    def _start(self) -> subprocess.Popen:
        source_root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_root, env.get("PYTHONPATH")]))
        # Our own interpreter and module, arguments built here from settings: no shell.
        process = subprocess.Popen(self._command, stdin=subprocess.PIPE, env=env)  # noqa: S603
        process.stdin.write(self._given)
        process.stdin.flush()  # and left open: its end tells the shipper to stop
        return process


class PredictionLogger:
    def __init__(
        self, journal: PredictionJournal, shipping: Shipping, flush_seconds: float = 0.2
    ) -> None:
        self.journal = journal
        self.shipping = shipping
        self.flush_seconds = flush_seconds
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self.refused = 0
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
        target = self.journal.seal()
        while True:
            self.shipping.tick()
            status = self._apply(self.shipping.status())
            if status["shipped_through"] >= target and not status["adopted_pending_rows"]:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def close(self, timeout: float = 60.0) -> None:
        """Ship what the store takes, then stop; the rest stays journaled for the next start."""
        self._closing.set()
        self._thread.join(timeout=timeout)
        self.journal.seal()
        self.shipping.stop(timeout)
        self._apply(self.shipping.status())
        self.journal.close()

    def stats(self) -> dict[str, object]:
        status = self._apply(self.shipping.status())
        journal = self.journal.stats()
        with self._lock:
            refused = self.refused
        return {
            "enqueued": self.journal.appended_rows + status["adopted_rows"],
            "written": status["written"],
            "pending": journal["pending_rows"] + status["adopted_pending_rows"],
            "refused": refused,
            "write_errors": status["write_errors"],
            "last_error": status["last_error"],
            "journal": {
                **journal,
                "adopted_segments": status["adopted_segments"],
                "adopted_rows": status["adopted_rows"],
                "shipper": {
                    key: status[key] for key in ("shipper_pid", "restarts") if key in status
                },
            },
        }

    def _apply(self, status: dict[str, Any]) -> dict[str, Any]:
        """Forget the journal's segments the store has; count dead workers' bytes still due."""
        self.journal.shipped_through(status["shipped_through"])
        self.journal.other_bytes = status["adopted_pending_bytes"]
        return status

    def _run(self) -> None:
        backoff = 0.0
        while not self._closing.wait(backoff or self.flush_seconds):
            self.journal.seal()
            shipped = self.shipping.tick()
            self._apply(self.shipping.status())
            backoff = next_backoff(backoff, shipped)
