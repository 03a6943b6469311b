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

import logging
from collections.abc import Callable
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        field = ROUTES.get(scope.get("path", "")) if scope["type"] == "http" else None
        if field is None or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        body, more = await _whole_body(receive)
        answer = await self._answer(field, body) if not more else None
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
