"""Adaptive micro-batching: concurrent requests share one model call.

A model call has a large fixed cost (sklearn validation, the column transformer, one pass per
tree) and a small cost per row, so scoring 32 waiting requests together costs little more than
scoring one. The batcher never waits for company: when idle, a request is scored at once; while
a call runs, new requests queue and the next call takes all of them (up to `max_rows`). Batches
therefore grow with load and stay at one under light traffic, which keeps p99 low either way.

A call's results can be made final before anyone sees them (`settle`, run in the model thread
right after the call: the serving runtime journals them there, see serving/group_commit.py),
so they reach the event loop once, when they may be answered.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from threadpoolctl import threadpool_limits

Item = TypeVar("Item")
Result = TypeVar("Result")
# (a call's results, whether other requests wait) -> None once they are final, or a future
# settled when they are.
Settle = Callable[[Sequence[Result], bool], "Future[None] | None"]
Answer = tuple[list[Result], "asyncio.Future[None] | None"]


class MicroBatcher(Generic[Item, Result]):
    """`await submit(items)` returns `score(items)`, computed in a call shared with others.

    `score` runs in one dedicated thread (it is CPU-bound; the event loop keeps reading
    requests), set up once by `thread_setup`, and must return one result per item, in order.
    A failing call (or `settle`) fails every request in it.
    """

    def __init__(
        self,
        score: Callable[[list[Item]], Sequence[Result]],
        max_rows: int = 1000,
        thread_setup: Callable[[], object] | None = None,
        settle: Settle | None = None,
    ) -> None:
        self._score = score
        self._settle = settle
        self.max_rows = max_rows
        self._thread = ThreadPoolExecutor(1, "model-call", initializer=thread_setup)
        self._waiting: deque[tuple[list[Item], asyncio.Future[Answer]]] = deque()
        self._worker: asyncio.Task[None] | None = None
        self.calls = 0
        self.rows = 0

    async def submit(self, items: list[Item]) -> list[Result]:
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append((items, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        results, final = await future
        if final is not None:
            await asyncio.shield(final)  # shared by the call's requests: never cancel it
        return results

    def _call(self, items: list[Item]) -> tuple[Sequence[Result], Future[None] | None]:
        """In the model thread: score, then settle while no other thread is involved."""
        results = self._score(items)
        if len(results) != len(items):
            raise RuntimeError(f"scored {len(results)} results for {len(items)} items")
        final = self._settle(results, bool(self._waiting)) if self._settle else None
        return results, final

    def _next_batch(self) -> list[tuple[list[Item], asyncio.Future[Answer]]]:
        """Waiting requests, oldest first, up to `max_rows` rows (always at least one)."""
        batch = [self._waiting.popleft()]
        rows = len(batch[0][0])
        while self._waiting and rows + len(self._waiting[0][0]) <= self.max_rows:
            rows += len(self._waiting[0][0])
            batch.append(self._waiting.popleft())
        return batch

    async def _drain(self) -> None:
        while self._waiting:
            batch = self._next_batch()
            items = [item for request, _ in batch for item in request]
            try:
                results, settling = await asyncio.get_running_loop().run_in_executor(
                    self._thread, self._call, items
                )
            except Exception as exc:  # every request in the call gets the error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.calls += 1
            self.rows += len(items)
            final = asyncio.wrap_future(settling) if settling is not None else None
            start = 0
            for request, future in batch:
                if not future.done():  # a client that went away cancelled its future
                    future.set_result((list(results[start : start + len(request)]), final))
                start += len(request)

    def stats(self) -> dict[str, float]:
        return {
            "calls": self.calls,
            "rows": self.rows,
            "mean_rows_per_call": round(self.rows / self.calls, 2) if self.calls else 0.0,
        }


def one_openmp_thread() -> None:
    """Model calls use one OpenMP thread: concurrency comes from batching requests, and a
    parallel region per tree costs far more than it saves on small inputs (benchmarks/serving.py
    measured single-record calls up to 100x slower with two threads on a busy 2-core machine).
    OpenMP thread limits are per calling thread, hence set in the model-call thread itself."""
    threadpool_limits(limits=1)
