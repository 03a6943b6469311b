"""The journal's shipper: sealed segments to the prediction store, in a process of its own.

Shipping (decoding segments, binding thousands of values per insert) is CPU work under the
interpreter lock; in the serving worker it took a fifth of the only core Python code there can
use, at the cost of answers. A separate process takes it to another core: the worker only
appends, seals (a rename) and reads back the small status file this process publishes
(`<owner>.status.json`: rows written, errors, the last of the worker's segments shipped).

A shipper ships its own worker's sealed segments, oldest first, and those of dead workers,
whose lock it takes first so two shippers never adopt the same worker. It deletes a segment
once the store has every row of it (a segment shipped again after a crash is harmless: the
store inserts by request id). When its standard input closes (the worker stops it, or the
worker is gone: the kernel closes the pipe either way) it ships once more and exits; whatever
the store did not take stays on disk for the next shipper. It ignores SIGTERM and SIGINT: they
come to the whole process group at a stop, and the worker still has rows to seal then.

Run by the worker as `python -m serving.shipper --journal DIR --owner ID`, the store's URL and
the data contract as one JSON line on standard input (a URL may carry a password, and a command
line is visible to every user of the machine), which then stays open until the worker stops.
"""

from __future__ import annotations

import argparse
import fcntl
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from serving.journal import (
    LOCK_SUFFIX,
    OPEN_SUFFIX,
    SEGMENT_SUFFIX,
    read_segment,
    segment_owner,
    segment_sequence,
)

log = logging.getLogger("churnops.shipper")

Row = Sequence[Any]
Writer = Callable[[Sequence[Row]], None]
STATUS_SUFFIX = ".status.json"
ADOPT_EVERY_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 10.0


class SegmentShipper:
    """Ships one worker's sealed segments and any dead worker's to `write`."""

    def __init__(self, directory: Path, owner: str, write: Writer, batch_size: int = 1000):
        self.directory = directory
        self.owner = owner
        self._write = write
        self.batch_size = batch_size
        self._progress: dict[Path, int] = {}  # leading rows the store has (a retry resumes)
        self._adopted: dict[str, Any] = {}  # dead owner -> its lock, held while shipping
        self._adopted_rows: dict[Path, int] = {}  # rows of adopted segments not yet shipped
        self._next_adoption = 0.0
        self.written = 0
        self.write_errors = 0
        self.last_error: str | None = None
        self.shipped_through = 0
        self.adopted_segments = 0
        self.adopted_rows = 0

    def ship(self) -> bool:
        """Every segment there is to ship, oldest first; False at the first failed write (the
        rest stays on disk for the next call)."""
        if time.monotonic() >= self._next_adoption:
            self._adopt_orphans()
            self._next_adoption = time.monotonic() + ADOPT_EVERY_SECONDS
        for path in self._adopted_segments() + self._own_segments():
            if not self._ship_segment(path):
                return False
        self._release_finished_owners()
        return True

    def status(self) -> dict[str, object]:
        return {
            "written": self.written,
            "write_errors": self.write_errors,
            "last_error": self.last_error,
            "shipped_through": self.shipped_through,
            "adopted_segments": self.adopted_segments,
            "adopted_rows": self.adopted_rows,
            "adopted_pending_rows": sum(self._adopted_rows.values()),
            "adopted_pending_bytes": sum(_size(path) for path in self._adopted_rows),
        }

    def release(self) -> None:
        """Let go of dead workers' locks (their unshipped segments go to the next shipper)."""
        for handle in self._adopted.values():
            handle.close()
        self._adopted.clear()

    # -- internals ----------------------------------------------------------------------------

    def _own_segments(self) -> list[Path]:
        return sorted(self.directory.glob(f"{self.owner}-*{SEGMENT_SUFFIX}"), key=segment_sequence)

    def _adopted_segments(self) -> list[Path]:
        return sorted(self._adopted_rows, key=_age_order)

    def _ship_segment(self, path: Path) -> bool:
        rows = read_segment(path)
        done = self._progress.get(path, 0)
        while done < len(rows):
            chunk = rows[done : done + self.batch_size]
            if not self._write_chunk(chunk):
                self._progress[path] = done
                return False
            done += len(chunk)
        path.unlink(missing_ok=True)
        self._progress.pop(path, None)
        if self._adopted_rows.pop(path, None) is None:
            self.shipped_through = max(self.shipped_through, segment_sequence(path))
        return True

    def _write_chunk(self, chunk: Sequence[Row]) -> bool:
        try:
            self._write(chunk)
        except Exception as exc:  # the store may be down: the rows stay journaled
            self.write_errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("prediction store write failed (rows kept on disk): %s", exc)
            return False
        self.written += len(chunk)
        return True

    def _adopt_orphans(self) -> None:
        """Take the lock of every dead worker and queue its segments (a dead worker with none
        left just has its files cleared)."""
        segments: dict[str, list[Path]] = {}
        for path in self._orphan_candidates():
            segments.setdefault(segment_owner(path), []).append(path)
        locks = {
            path.name.removesuffix(LOCK_SUFFIX) for path in self.directory.glob(f"*{LOCK_SUFFIX}")
        }
        for owner in sorted((locks | set(segments)) - {self.owner} - set(self._adopted)):
            handle = _take_lock(self.directory / f"{owner}{LOCK_SUFFIX}")
            if handle is None:
                continue  # alive, or another shipper has it
            self._adopted[owner] = handle
            for path in segments.get(owner, []):
                rows = len(read_segment(path))
                self._adopted_rows[path] = rows
                self.adopted_rows += rows
                self.adopted_segments += 1
            if owner in segments:
                log.warning(
                    "prediction journal: adopted %d segment(s) left by a stopped worker (%s)",
                    len(segments[owner]),
                    owner,
                )

    def _orphan_candidates(self) -> list[Path]:
        return [
            path
            for suffix in (SEGMENT_SUFFIX, OPEN_SUFFIX)
            for path in self.directory.glob(f"*{suffix}")
            if segment_owner(path) != self.owner
        ]

    def _release_finished_owners(self) -> None:
        pending = {segment_owner(path) for path in self._adopted_rows}
        for owner in [owner for owner in self._adopted if owner not in pending]:
            (self.directory / f"{owner}{STATUS_SUFFIX}").unlink(missing_ok=True)
            (self.directory / f"{owner}{LOCK_SUFFIX}").unlink(missing_ok=True)
            self._adopted.pop(owner).close()


def publish_status(directory: Path, owner: str, status: dict[str, object]) -> None:
    """Atomically replace the status file the worker reads."""
    path = directory / f"{owner}{STATUS_SUFFIX}"
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_bytes(orjson.dumps(status))
    os.replace(scratch, path)


def read_status(directory: Path, owner: str) -> dict[str, object] | None:
    try:
        return orjson.loads((directory / f"{owner}{STATUS_SUFFIX}").read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None


def run(
    shipper: SegmentShipper,
    stopping: threading.Event,
    flush_seconds: float,
) -> None:
    """Ship every `flush_seconds` (backing off while the store is down) until `stopping` is
    set; then ship once more and return."""
    backoff = 0.0
    published = None
    while True:
        stopping.wait(backoff or flush_seconds)
        final = stopping.is_set()
        shipped = shipper.ship()
        if (status := shipper.status()) != published:
            publish_status(shipper.directory, shipper.owner, status)
            published = status
        backoff = next_backoff(backoff, shipped)
        if final:
            shipper.release()
            return


def next_backoff(backoff: float, shipped: bool) -> float:
    """The wait before the next attempt: the interval again after a success, else 0.5 s doubling
    to `MAX_BACKOFF_SECONDS` (retries follow this, not the arrival of new rows)."""
    return 0.0 if shipped else min(max(backoff * 2, 0.5), MAX_BACKOFF_SECONDS)


def store_writer(store_url: str, contract_yaml: str) -> Writer:
    """Prediction rows to `predictions`, shadow scores to `shadow_predictions`."""
    import yaml

    from churnops.contract.files import parse_contract
    from churnops.monitoring import prediction_store
    from serving.rollout import split_writer

    contract = parse_contract(yaml.safe_load(contract_yaml), "the serving worker's contract")
    engine = prediction_store.connect(store_url)
    return split_writer(
        partial(prediction_store.write_prediction_rows, engine, contract),
        partial(prediction_store.write_shadow_rows, engine, contract),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journal", type=Path, required=True)
    parser.add_argument("--owner", required=True)
    parser.add_argument("--flush-seconds", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, signal.SIG_IGN)  # the worker says when, by closing stdin
    stopping = threading.Event()
    given = orjson.loads(sys.stdin.buffer.readline())
    threading.Thread(target=_until_closed, args=(stopping,), daemon=True).start()
    write = store_writer(given["store"], given["contract"])
    # Everything imported so far lives as long as the process: out of the collector's full
    # passes (~100k objects, 50 ms a pass on every few segments shipped).
    gc.freeze()
    shipper = SegmentShipper(args.journal, args.owner, write, args.batch_size)
    run(shipper, stopping, args.flush_seconds)


def _until_closed(stopping: threading.Event) -> None:
    """Standard input ends when the worker closes it or is gone: time to stop."""
    sys.stdin.buffer.read()
    stopping.set()


def _take_lock(path: Path):
    """The lock's handle when nobody holds it (its owner is dead), else None."""
    try:
        handle = path.open("a")
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _age_order(path: Path) -> tuple[float, str, int]:
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        mtime = 0.0
    return mtime, segment_owner(path), segment_sequence(path)


if __name__ == "__main__":
    main()
