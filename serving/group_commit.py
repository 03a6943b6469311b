"""Group commit: the rows of every request waiting to be journaled share one write and one
`fdatasync`.

An `fdatasync` takes from a tenth of a millisecond to several on a busy disk. Under load the
syncs run in a thread of their own: the model thread hands its scored items over and goes on
to the next call while the journal thread turns them into rows and syncs (mostly while the
trees predict, which releases the interpreter lock), and items handed over meanwhile join the
next sync.

When nothing else waits, the caller syncs its rows itself (`inline`): handing over to another
thread and back costs two thread wake-ups, a third of the sync's own time at one client.
Either way one append runs at a time, and each answer waits only for the sync that covers
its rows.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

Item = TypeVar("Item")


class GroupCommit(Generic[Item]):
    """`append(items)` journals the items of every request waiting, durably, in one go."""

    def __init__(self, append: Callable[[list[Item]], None]) -> None:
        self._append = append
        self._waiting: list[tuple[Sequence[Item], Future[None]]] = []
        self._wake = threading.Condition()
        self._appending = False
        self._closing = False
        self.syncs = 0
        self.inline_syncs = 0
        self.items = 0
        self._thread = threading.Thread(target=self._run, name="journal-commit", daemon=True)
        self._thread.start()

    def submit(self, items: Sequence[Item], inline: bool = False) -> Future[None] | None:
        """Journal `items` durably. With `inline` and no append running or waiting, append them
        in this thread and return None once they are on disk (raising what the append raised);
        otherwise return a future the journal thread settles."""
        with self._wake:
            if self._closing:
                raise RuntimeError("the prediction journal is closed")
            if not (inline and not self._appending and not self._waiting):
                future: Future[None] = Future()
                self._waiting.append((items, future))
                self._wake.notify()
                return future
            self._appending = True
        try:
            self._append(list(items))
            self._count(len(items), inline=True)
        finally:
            self._done_appending()
        return None

    async def commit(self, items: Sequence[Item]) -> None:
        """Return once `items` are durably journaled; raise what the append raised."""
        await asyncio.wrap_future(self.submit(items))

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is waiting, then stop the thread."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout=timeout)

    def stats(self) -> dict[str, float]:
        return {
            "syncs": self.syncs,
            "inline_syncs": self.inline_syncs,
            "items": self.items,
            "mean_items_per_sync": round(self.items / self.syncs, 2) if self.syncs else 0.0,
        }

    def _run(self) -> None:
        while True:
            with self._wake:
                while (self._appending or not self._waiting) and not self._closing:
                    self._wake.wait()
                if self._appending:  # closing while an inline append runs: let it finish
                    self._wake.wait()
                    continue
                batch, self._waiting = self._waiting, []
                if not batch and self._closing:
                    return
                self._appending = True
            # Running: a request cancelled from now on still has its rows journaled.
            futures = [future for _, future in batch if future.set_running_or_notify_cancel()]
            try:
                items = [item for waiting, _ in batch for item in waiting]
                self._append(items)
                self._count(len(items), inline=False)
            except Exception as exc:  # every request of this sync hears of it
                for future in futures:
                    future.set_exception(exc)
            else:
                for future in futures:
                    future.set_result(None)
            finally:
                self._done_appending()

    def _count(self, items: int, inline: bool) -> None:
        self.syncs += 1
        self.inline_syncs += inline
        self.items += items

    def _done_appending(self) -> None:
        with self._wake:
            self._appending = False
            self._wake.notify_all()
