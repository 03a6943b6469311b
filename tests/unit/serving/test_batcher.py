"""Micro-batching: concurrent requests share model calls, each gets its own rows back."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future

import pytest
from threadpoolctl import threadpool_info

from serving.batcher import MicroBatcher, one_openmp_thread

pytestmark = pytest.mark.unit


def test_concurrent_requests_share_calls_and_get_their_own_results_in_order() -> None:
    calls: list[int] = []

    def score(items: list[int]) -> list[int]:
        calls.append(len(items))
        time.sleep(0.02)  # a model call: requests arriving meanwhile wait for the next one
        return [item * 10 for item in items]

    async def run() -> list[list[int]]:
        batcher = MicroBatcher(score, max_rows=1000)
        requests = [[i] for i in range(50)] + [[100, 101, 102]]
        return await asyncio.gather(*(batcher.submit(r) for r in requests))

    results = asyncio.run(run())
    assert results[:50] == [[i * 10] for i in range(50)]
    assert results[50] == [1000, 1010, 1020]
    assert sum(calls) == 53
    assert len(calls) < 10  # shared calls, not one per request


def test_a_lone_request_is_scored_at_once_without_waiting_for_company() -> None:
    calls: list[int] = []

    def score(items: list[int]) -> list[int]:
        calls.append(len(items))
        return items

    async def run() -> list[list[int]]:
        batcher = MicroBatcher(score)
        return [await batcher.submit([i]) for i in range(20)]

    assert asyncio.run(run()) == [[i] for i in range(20)]
    assert calls == [1] * 20


def test_a_call_never_exceeds_max_rows_nor_splits_a_request() -> None:
    calls: list[list[int]] = []

    def score(items: list[int]) -> list[int]:
        calls.append(items)
        time.sleep(0.01)
        return items

    async def run() -> None:
        batcher = MicroBatcher(score, max_rows=5)
        await asyncio.gather(*(batcher.submit([i, i, i]) for i in range(10)))

    asyncio.run(run())
    assert all(len(items) <= 5 or len(set(items)) == 1 for items in calls)
    assert all(len(items) % 3 == 0 for items in calls)
    assert sorted(item for items in calls for item in items) == sorted(list(range(10)) * 3)


def test_a_failing_call_fails_its_requests_and_the_next_call_works() -> None:
    failing = threading.Event()
    failing.set()

    def score(items: list[int]) -> list[int]:
        if failing.is_set():
            failing.clear()
            raise ValueError("model broke")
        return items

    async def run() -> tuple[BaseException | list[int], list[int]]:
        batcher = MicroBatcher(score)
        first = await asyncio.gather(batcher.submit([1]), return_exceptions=True)
        return first[0], await batcher.submit([2])

    first, second = asyncio.run(run())
    assert isinstance(first, ValueError)
    assert second == [2]


def test_wrong_number_of_results_is_an_error_not_a_mixup() -> None:
    async def run() -> None:
        await MicroBatcher(lambda items: items[:-1]).submit([1, 2])

    with pytest.raises(RuntimeError, match="scored 1 results for 2 items"):
        asyncio.run(run())


def test_model_calls_run_on_one_thread_limited_to_one_openmp_thread() -> None:
    """The limit is per calling thread in OpenMP, so it must hold in the model-call thread."""
    seen: list[tuple[str, list[int]]] = []

    def score(items: list[int]) -> list[int]:
        threads = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"]
        seen.append((threading.current_thread().name, threads))
        return items

    async def run() -> None:
        batcher = MicroBatcher(score, thread_setup=one_openmp_thread)
        for i in range(3):
            await batcher.submit([i])

    asyncio.run(run())
    names = {name for name, _ in seen}
    assert len(names) == 1
    assert next(iter(names)) != threading.current_thread().name
    assert all(threads and set(threads) == {1} for _, threads in seen)


def test_results_are_settled_in_the_model_thread_before_anyone_gets_them() -> None:
    """The serving runtime journals a call's predictions in `settle`, in the model thread: a
    call with no request waiting behind it settles there and then; otherwise it hands back a
    future, and its requests get their results only once that future is done."""
    seen: list[tuple[str, bool]] = []
    handed: list[Future[None]] = []

    def score(items: list[str]) -> list[str]:
        time.sleep(0.05)
        return items

    def settle(results, others_waiting: bool) -> Future[None] | None:
        seen.append((threading.current_thread().name, others_waiting))
        if not others_waiting:
            return None
        handed.append(Future())
        return handed[-1]

    async def run() -> tuple[bool, list[str], list[str]]:
        batcher = MicroBatcher(score, settle=settle)
        first = asyncio.create_task(batcher.submit(["a"]))
        await asyncio.sleep(0.01)
        second = await batcher.submit(["b"])  # arrived while the first call ran
        held = not first.done()  # its call is scored but its future is not settled
        handed[0].set_result(None)
        return held, await first, second

    held, first, second = asyncio.run(run())
    assert held and first == ["a"] and second == ["b"]
    assert [waiting for _, waiting in seen] == [True, False]
    names = {name for name, _ in seen}
    assert len(names) == 1 and threading.current_thread().name not in names


def test_a_failing_settle_fails_the_requests_of_its_call() -> None:
    def settle(results, others_waiting: bool) -> None:
        raise OSError("journal disk full")

    async def run() -> list[object]:
        batcher = MicroBatcher(lambda items: items, settle=settle)
        return await asyncio.gather(batcher.submit([1]), return_exceptions=True)

    (failed,) = asyncio.run(run())
    assert isinstance(failed, OSError)
