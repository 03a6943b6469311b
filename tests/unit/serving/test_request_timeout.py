"""The service's request timeout (serving/request_timeout.py): BentoML's contract (a 504 when
the answer has not started in time, the handler cancelled) without a timer left per request."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from bentoml._internal.server.base_app import BaseAppFactory
from bentoml._internal.server.http import traffic

from serving.request_timeout import RequestTimeout, use_for_bento

pytestmark = pytest.mark.unit


def _call(app, timeout: float, requests: int = 1) -> tuple[list[list[dict]], list]:
    """The messages each request sent, and every timer the event loop was asked for."""
    timers: list[asyncio.TimerHandle] = []

    async def main() -> list[list[dict]]:
        loop = asyncio.get_running_loop()
        schedule = loop.call_later

        def recorded(*args, **kwargs):
            timers.append(schedule(*args, **kwargs))
            return timers[-1]

        loop.call_later = recorded  # type: ignore[method-assign]
        middleware = RequestTimeout(app, timeout)
        sent: list[list[dict]] = []
        for _ in range(requests):
            messages: list[dict] = []

            async def send(message, messages=messages) -> None:
                messages.append(message)

            await middleware({"type": "http", "path": "/predict"}, _no_body, send)
            sent.append(messages)
        return sent

    return asyncio.run(main()), timers


async def _no_body() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _answer(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_answered_requests_leave_no_timer_behind() -> None:
    sent, timers = _call(_answer, timeout=30, requests=50)
    assert [m[-1]["body"] for m in sent] == [b"ok"] * 50
    assert len(timers) == 50
    assert all(timer.cancelled() for timer in timers)


def test_a_request_without_an_answer_in_time_gets_504_and_its_handler_is_cancelled() -> None:
    cancelled = []

    async def slow(scope, receive, send) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        await _answer(scope, receive, send)

    started = time.monotonic()
    (messages,), _ = _call(slow, timeout=0.2)
    assert time.monotonic() - started < 5
    assert messages[0]["status"] == 504
    assert orjson.loads(messages[1]["body"]) == {"error": "no answer within 0.2 seconds"}
    assert cancelled == [True]


def test_an_answer_started_in_time_is_finished_however_long_it_takes() -> None:
    async def slow_body(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.4)
        await send({"type": "http.response.body", "body": b"late but whole"})

    (messages,), timers = _call(slow_body, timeout=0.1)
    assert [m.get("status") for m in messages] == [200, None]
    assert messages[1]["body"] == b"late but whole"
    assert timers[0].cancelled()


def test_a_handler_failing_before_its_answer_fails_at_once_not_at_the_timeout() -> None:
    async def failing(scope, receive, send) -> None:
        raise ValueError("broken handler")

    started = time.monotonic()
    with pytest.raises(ValueError, match="broken handler"):
        _call(failing, timeout=30)
    assert time.monotonic() - started < 5


def test_bentoml_builds_its_app_with_this_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(traffic, "TimeoutMiddleware", traffic.TimeoutMiddleware)

    class Factory(BaseAppFactory):
        name = "probe"

    use_for_bento()
    classes = [middleware.cls for middleware in Factory(timeout=30).middlewares]
    assert RequestTimeout in classes
