"""Group commit: the rows of every request waiting to be journaled share one write and one
`fdatasync`, in a thread of their own.

An `fdatasync` takes from a tenth of a millisecond to several on a busy disk. Paid in the
model-call thread, the next model call would wait for it; here the model thread moves on while
the journal thread syncs, and requests that finish scoring meanwhile join the next sync. Each
request's answer waits only for the sync that covers its rows.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any

Row = Sequence[Any]
Waiter = tuple[list[Row], asyncio.Future[None], asyncio.AbstractEventLoop]


class GroupCommit:
    def __init__(self, append: Callable[[list[Row]], None]) -> None:
        self._append = append
        self._waiting: list[Waiter] = []
        self._wake = threading.Condition()
        self._closing = False
        self.syncs = 0
        self.rows = 0
        self._thread = threading.Thread(target=self._run, name="journal-commit", daemon=True)
        self._thread.start()

    async def commit(self, rows: list[Row]) -> None:
        """Return once `rows` are durably journaled; raise what the append raised."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        with self._wake:
            if self._closing:
                raise RuntimeError("the prediction journal is closed")
            self._waiting.append((rows, done, loop))
            self._wake.notify()
        await done

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is waiting, then stop the thread."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout=timeout)

    def stats(self) -> dict[str, float]:
        return {
            "syncs": self.syncs,
            "rows": self.rows,
            "mean_rows_per_sync": round(self.rows / self.syncs, 2) if self.syncs else 0.0,
        }

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._waiting and not self._closing:
                    self._wake.wait()
                batch, self._waiting = self._waiting, []
                if not batch and self._closing:
                    return
            rows = [row for waiter_rows, _, _ in batch for row in waiter_rows]
            error: BaseException | None = None
            try:
                self._append(rows)
                self.syncs += 1
                self.rows += len(rows)
            except Exception as exc:  # every request of this sync hears of it
                error = exc
            for _, done, loop in batch:
                loop.call_soon_threadsafe(_settle, done, error)


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():  # the client went away
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
