"""Group commit: waiting requests share one append, errors reach every request of it; a caller
with nothing waiting beside it appends in its own thread."""

from __future__ import annotations

import asyncio
import threading
import time

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
    assert commit.stats() == {
        "syncs": 2,
        "inline_syncs": 0,
        "items": 21,
        "mean_items_per_sync": 10.5,
    }


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


def test_a_caller_alone_appends_in_its_own_thread() -> None:
    threads: list[str] = []
    commit = GroupCommit(lambda rows: threads.append(threading.current_thread().name))
    assert commit.submit([("a",)], inline=True) is None  # on disk when it returns
    commit.close()
    assert threads == [threading.current_thread().name]
    assert commit.stats()["inline_syncs"] == 1


def test_an_inline_append_waits_its_turn_behind_the_journal_thread() -> None:
    """While the journal thread syncs, an inline caller queues instead: one append at a time,
    and the model thread is not held up by another request's sync."""
    gate = threading.Event()
    running: list[int] = []
    overlaps: list[int] = []

    def append(rows) -> None:
        running.append(1)
        overlaps.append(len(running))
        if rows[0][0] == "slow":
            gate.wait(5)
        running.pop()

    commit = GroupCommit(append)
    slow = commit.submit([("slow",)])
    time.sleep(0.05)  # the journal thread is inside the slow append
    queued = commit.submit([("b",)], inline=True)
    assert queued is not None and not queued.done()
    gate.set()
    slow.result(5), queued.result(5)
    commit.close()
    assert overlaps == [1, 1]
    assert commit.stats()["inline_syncs"] == 0


def test_an_inline_append_that_fails_raises_in_the_caller() -> None:
    def append(rows) -> None:
        raise OSError("disk full")

    commit = GroupCommit(append)
    with pytest.raises(OSError, match="disk full"):
        commit.submit([("a",)], inline=True)
    later = commit.submit([("b",)])  # the journal thread still serves later requests
    with pytest.raises(OSError):
        later.result(5)
    commit.close()
