"""The BentoML prediction service: follows `models:/<name>@champion` on the MLflow server and
logs every prediction to the prediction store.

The request, answer and feedback schemas (and the OpenAPI example) come from the configured
data contract (`CHURNOPS_CONTRACT`, else the shipped Telco one), read once at import: BentoML
builds its API models from the signatures below.
"""

from __future__ import annotations

import gc
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated

import bentoml
from pydantic import Field
from starlette.responses import JSONResponse

from churnops.contract import configured_contract
from churnops.records import ID_ATTRIBUTE
from churnops.settings import Settings
from serving.errors import Unavailable
from serving.fast_path import LeanPredictRoute
from serving.guard import RequestGuard
from serving.request_timeout import use_for_bento
from serving.routes import build_routes
from serving.schemas import MAX_BATCH, FeedbackReceipt, ReasonCode, api_models
from serving.tokens import configured_tokens

if TYPE_CHECKING:
    from churnops.model.reasons import Reason
    from serving.runtime import Scored, ServingRuntime

EXPLAIN_HELP = (
    "Also answer the top 3 reasons pushing each customer towards churn (log-odds "
    "contributions, see GET /model for the method); off, the request costs nothing extra."
)
MAX_FEEDBACK = 10_000
SETTINGS = Settings()
# BentoML's own timeout middleware leaves a timer per request alive (serving/request_timeout.py).
use_for_bento()
CONTRACT = configured_contract(SETTINGS.contract)
_MODELS = api_models(CONTRACT)
CustomerRecord = _MODELS.record
ChurnPrediction = _MODELS.prediction
BatchPrediction = _MODELS.batch
Feedback = _MODELS.feedback


def _reason(reason: Reason) -> ReasonCode:
    return ReasonCode(
        feature=reason.feature,
        value=reason.value,
        log_odds=round(float(reason.contribution), 6),
        text=reason.text,
    )


def _status() -> dict[str, object]:
    """`GET /model`: the worker's service instance, once BentoML has created it."""
    try:
        service: ChurnService = bentoml.get_current_service()
    except bentoml.exceptions.BentoMLException:
        return {"ready": False, "last_error": "service starting", "contract": _contract_status()}
    return service.runtime.status()


def _runtime() -> ServingRuntime | None:
    """This worker's runtime, once BentoML has created the service instance."""
    try:
        return bentoml.get_current_service().runtime
    except bentoml.exceptions.BentoMLException:
        return None


def _contract_status() -> dict[str, str]:
    return {"dataset": CONTRACT.dataset, "fingerprint": CONTRACT.fingerprint}


def _prediction(item: Scored) -> ChurnPrediction:  # type: ignore[valid-type]
    return ChurnPrediction(
        request_id=item.request_id,
        **{ID_ATTRIBUTE: item.customer_id},
        churn_probability=item.score,
        churn=item.answer,
        model_version=item.model.version,
        reasons=[_reason(r) for r in item.reasons] if item.reasons is not None else None,
    )


@bentoml.service(name="churn_prediction", traffic={"timeout": 30}, workers=SETTINGS.serving_workers)
class ChurnService:
    """Churn probability for customers of the configured data contract, from the current
    champion model."""

    def __init__(self) -> None:
        # Imported here, in the worker: BentoML's supervisor imports this module only for its
        # configuration and must not pay for scikit-learn, pandas and MLflow (serving/runtime.py).
        from serving.runtime import ServingRuntime

        self.runtime: ServingRuntime = ServingRuntime(SETTINGS, CONTRACT)
        # Everything imported and loaded so far lives as long as the process: keep it out of
        # the collector's full passes, which otherwise stall requests (benchmarks/serving.py).
        gc.freeze()

    def __is_ready__(self) -> bool:
        return self.runtime.ready()

    @bentoml.on_shutdown
    def flush_prediction_log(self) -> None:
        """Graceful stop: every answered prediction reaches the store before exit."""
        self.runtime.close()

    async def _score(self, customers: list, explain: bool) -> BatchPrediction:  # type: ignore[valid-type]
        try:
            scored = await self.runtime.score(self.runtime.rows(customers), explain)
        except Unavailable as exc:
            raise bentoml.exceptions.ServiceUnavailable(str(exc)) from exc
        predictions = [_prediction(item) for item in scored]
        # Every row of a request is scored in one call, so by one version.
        return BatchPrediction(model_version=predictions[0].model_version, predictions=predictions)

    @bentoml.api(route="/predict")
    async def predict(
        self,
        customer: CustomerRecord,  # type: ignore[valid-type]
        explain: Annotated[bool, Field(description=EXPLAIN_HELP)] = False,
    ) -> ChurnPrediction:  # type: ignore[valid-type]
        """Score one customer (the fields are the data contract's features); with
        `explain: true`, also the top reasons pushing it towards churn."""
        return (await self._score([customer], explain)).predictions[0]

    @bentoml.api(route="/predict_batch")
    async def predict_batch(
        self,
        customers: Annotated[
            list[CustomerRecord],  # type: ignore[valid-type]
            Field(min_length=1, json_schema_extra={"maxItems": MAX_BATCH}),
        ],
        explain: Annotated[bool, Field(description=EXPLAIN_HELP)] = False,
    ) -> BatchPrediction:  # type: ignore[valid-type]
        """Score up to 1000 customers in one request (more gets HTTP 413); with
        `explain: true`, each with its top reasons."""
        if too_many := _over_limit("customers", len(customers), MAX_BATCH):
            return too_many  # type: ignore[return-value]
        return await self._score(customers, explain)

    @bentoml.api(route="/feedback")
    def feedback(
        self,
        labels: Annotated[
            list[Feedback],  # type: ignore[valid-type]
            Field(min_length=1, json_schema_extra={"maxItems": MAX_FEEDBACK}),
        ],
    ) -> FeedbackReceipt:
        """Store ground-truth labels that arrived after the prediction (joined by id later).
        Each label must name a logged request id or customer, else the request is refused
        (HTTP 422 naming each unknown label) and nothing of it is stored."""
        if too_many := _over_limit("labels", len(labels), MAX_FEEDBACK):
            return too_many  # type: ignore[return-value]
        payload = [label.model_dump() for label in labels]
        try:
            stored, unknown = self.runtime.store_feedback(payload)
        except Unavailable as exc:
            raise bentoml.exceptions.ServiceUnavailable(str(exc)) from exc
        if unknown:
            return _unknown_labels_response(payload, unknown)  # type: ignore[return-value]
        return FeedbackReceipt(stored=stored)


def _unknown_labels_response(labels: list[dict], unknown: list[int]) -> JSONResponse:
    """422 with one entry per unknown label (the first 20), each naming the field it used."""
    detail = []
    for i in unknown[:20]:
        field = "request_id" if labels[i].get("request_id") is not None else CONTRACT.id_name
        value = labels[i].get(field)
        detail.append(
            {"loc": ["labels", i, field], "msg": f"no logged prediction has {field} {value!r}"}
        )
    reason = f"{len(unknown)} label(s) name no logged prediction; nothing was stored"
    return JSONResponse(
        {"error": reason, "detail": detail}, status_code=HTTPStatus.UNPROCESSABLE_ENTITY
    )


def _over_limit(field: str, count: int, limit: int) -> JSONResponse | None:
    """A list over its per-request limit is too large, not malformed: HTTP 413 naming the field
    and the limit, in the same shape as validation errors (BentoML passes a Response through)."""
    if count <= limit:
        return None
    reason = f"{field}: {count} items in one request; the limit is {limit}"
    return JSONResponse(
        {"error": reason, "detail": [{"loc": [field], "msg": reason}]},
        status_code=HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    )


ChurnService.mount_asgi_app(build_routes(_status), path="/")
# Deny by default: every route but the guard's open list (probes, docs, metrics, status) needs
# the token; the body limit and JSON-only apply to every request.
ChurnService.add_asgi_middleware(
    RequestGuard,
    max_body_bytes=SETTINGS.max_request_bytes,
    tokens=configured_tokens(SETTINGS),
)
if SETTINGS.serving_lean_route:
    # Inside the guard: the token, JSON-only and body checks apply first (serving/fast_path.py).
    ChurnService.add_asgi_middleware(
        LeanPredictRoute, contract=CONTRACT, runtime=_runtime, max_batch=MAX_BATCH
    )
