"""The request timeout of the Bento service (`traffic.timeout`), without a timer per request
left behind.

BentoML 1.4's own timeout middleware schedules a timer per request and never cancels it: each
one keeps the request's future and context (its tracing span) alive until the timeout passes.
At 1,500 requests/s and a 30 s timeout that is ~45k timers and ~700k objects, which every full
garbage collection walks: 250-300 ms stalls every second or so, the long tail of
benchmarks/serving.py, and the worker's memory. `RequestTimeout` keeps the same contract (a 504
when a request has not started its answer in time; the handler is cancelled) and cancels its
timer as soon as the answer starts. `use_for_bento()` puts it where BentoML looks for its own.
"""

from __future__ import annotations

import asyncio

import orjson

from serving.guard import ASGIApp, Message, Receive, Scope, Send


class RequestTimeout:
    """504 for a request whose answer has not started within `timeout` seconds."""

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        answering: asyncio.Future[None] = loop.create_future()

        def settle(error: BaseException | None = None) -> None:
            if not answering.done():
                if error is None:
                    answering.set_result(None)
                else:
                    answering.set_exception(error)

        async def send_answer(message: Message) -> None:
            settle()
            await send(message)

        handler = loop.create_task(self.app(scope, receive, send_answer))
        handler.add_done_callback(lambda _: settle())
        timer = loop.call_later(self.timeout, settle, TimeoutError())
        try:
            await answering
        except TimeoutError:
            if handler.cancel():
                await self._gateway_timeout(send)
                return
        except asyncio.CancelledError:
            handler.cancel()
            raise
        finally:
            timer.cancel()
        await handler

    async def _gateway_timeout(self, send: Send) -> None:
        body = orjson.dumps({"error": f"no answer within {self.timeout:g} seconds"})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 504, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def use_for_bento() -> None:
    """Make BentoML build its app with `RequestTimeout` (it imports its timeout middleware
    from this module when it builds the app); fails loudly if a BentoML upgrade moved it."""
    from bentoml._internal.server.http import traffic

    if not hasattr(traffic, "TimeoutMiddleware"):
        raise RuntimeError("bentoml._internal.server.http.traffic.TimeoutMiddleware is gone")
    traffic.TimeoutMiddleware = RequestTimeout  # type: ignore[misc]
