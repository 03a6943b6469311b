"""Group commit: waiting requests share one append, errors reach every request of it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from serving.group_commit import GroupCommit

pytestmark = pytest.mark.unit


def test_requests_waiting_together_share_one_append() -> None:
    appended: list[int] = []
    gate = threading.Event()

    def slow_append(rows) -> None:
        gate.wait(5)  # the first sync is slow: everyone after it queues for the next
        appended.append(len(rows))

    commit = GroupCommit(slow_append)

    async def requests() -> None:
        first = asyncio.create_task(commit.commit([("a",)]))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(commit.commit([(f"r{i}",)])) for i in range(20)]
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(first, *rest)

    asyncio.run(requests())
    commit.close()
    assert appended == [1, 20]
    assert commit.stats() == {"syncs": 2, "rows": 21, "mean_rows_per_sync": 10.5}


def test_a_failed_append_fails_every_request_of_that_sync_only() -> None:
    calls = []

    def append(rows) -> None:
        calls.append(rows)
        if len(calls) == 1:
            raise OSError("disk full")

    commit = GroupCommit(append)

    async def requests() -> list[object]:
        failed = await asyncio.gather(commit.commit([("a",)]), return_exceptions=True)
        ok = await asyncio.gather(commit.commit([("b",)]), return_exceptions=True)
        return [*failed, *ok]

    first, second = asyncio.run(requests())
    commit.close()
    assert isinstance(first, OSError) and second is None
