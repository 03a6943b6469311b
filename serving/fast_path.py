"""The lean route: plainly valid prediction requests answered without BentoML's request path.

BentoML builds a pydantic object per record, serializes the answer through its IO models and
wraps every call in its endpoint machinery; for a one-record request that costs more than the
model call (benchmarks/serving.py: the constant-answer BentoML service is the framework
ceiling). This middleware, inside the service's own middleware stack (after the token and body
checks, and after BentoML's metrics, tracing, access log, timeout and concurrency limit), takes
`POST /predict` and `/predict_batch` bodies whose records `records.plain_records_reader` reads
without doubt, scores them through the same runtime (micro-batcher, journal before answering)
and answers the same JSON. Everything else (any invalid or unusual value, `explain`, a batch
over the limit, a worker without a model) goes on to the BentoML API, which answers it, errors
included, exactly as before. `CHURNOPS_SERVING_LEAN_ROUTE=false` turns it off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson

from churnops.contract import Contract
from churnops.records import plain_records_reader
from serving.errors import Unavailable
from serving.guard import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from serving.runtime import Scored, ServingRuntime

log = logging.getLogger(__name__)

# Header on answers of the lean route (tests and operators can tell the two paths apart).
LEAN_HEADER = (b"x-churnops-route", b"lean")
ROUTES = {"/predict": "customer", "/predict_batch": "customers"}
# Bodies read into records and not yet answered, at most (one request always goes through):
# four 1,000-record Telco bodies, enough for the model call, the next one and two answers on
# their way. Measured at 32 clients x 1,000 records against 4 MiB: worker peak 386 -> 380 MiB,
# and 20% more requests answered (less memory churned per request).
READ_BUDGET_BYTES = 2 * 1024 * 1024


class ReadBudget:
    """Bounds the requests turned into records at once by their body bytes: records cost 2-3
    times their body (a 1,000-record Telco body of 0.5 MB holds 1.2 MB of rows), and a request
    waiting for the model keeps them. Under 32 clients sending 1,000 records that was ~40 MiB
    of rows waiting for a model call that takes 1,000 rows at a time; beyond the budget the
    bodies wait as bytes instead. Small requests pass at once (they fit beside anything)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._freed = asyncio.Condition()

    @asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        async with self._freed:
            await self._freed.wait_for(lambda: self.used == 0 or self.used + size <= self.limit)
            self.used += size
        try:
            yield
        finally:
            async with self._freed:
                self.used -= size
                self._freed.notify_all()


class LeanPredictRoute:
    def __init__(
        self,
        app: ASGIApp,
        contract: Contract,
        runtime: Callable[[], ServingRuntime | None],
        max_batch: int,
    ) -> None:
        self.app = app
        self.contract = contract
        self.runtime = runtime
        self.max_batch = max_batch
        self.read = plain_records_reader(contract)
        self.budget = ReadBudget(READ_BUDGET_BYTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        field = ROUTES.get(scope.get("path", "")) if scope["type"] == "http" else None
        if field is None or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        body, more = await _whole_body(receive)
        answer = None
        if not more:
            async with self.budget.hold(len(body)):
                answer = await self._answer(field, body)
        if answer is None:
            return await self.app(scope, _replay(body, more, receive), send)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(answer)).encode()),
            LEAN_HEADER,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    async def _answer(self, field: str, body: bytes) -> bytes | None:
        """The answer's bytes, or None to leave the request to the BentoML API."""
        runtime = self.runtime()
        customers = self._customers(field, body) if runtime is not None else None
        if customers is None or runtime is None:
            return None
        try:
            scored = await runtime.score(customers, explain=False)
        except Unavailable:
            return None  # the API answers the same refusal in its own shape
        if field == "customer":
            return orjson.dumps(self._prediction(scored[0]))
        predictions = [self._prediction(item) for item in scored]
        return orjson.dumps({"model_version": scored[0].model.version, "predictions": predictions})

    def _customers(self, field: str, body: bytes) -> list[tuple[str | None, list[object]]] | None:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if type(payload) is not dict or payload.keys() != {field}:
            return None
        records = [payload[field]] if field == "customer" else payload[field]
        if type(records) is not list or not 1 <= len(records) <= self.max_batch:
            return None
        return self.read(records)

    def _prediction(self, item: Scored) -> dict[str, Any]:
        return {
            "request_id": item.request_id,
            self.contract.id_name: item.customer_id,
            "churn_probability": item.score,
            "churn": item.answer,
            "model_version": item.model.version,
            "reasons": None,
        }


async def _whole_body(receive: Receive) -> tuple[bytes, bool]:
    """The body the guard has already read in full (one message); `more` if it was not."""
    message = await receive()
    return message.get("body", b""), bool(message.get("more_body", False))


def _replay(body: bytes, more: bool, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": more}

    return replay
