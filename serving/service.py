"""The BentoML prediction service: follows `models:/<name>@champion` on the MLflow server and
logs every prediction to the prediction store.

The request, answer and feedback schemas (and the OpenAPI example) come from the configured
data contract (`CHURNOPS_CONTRACT`, else the shipped Telco one), read once at import: BentoML
builds its API models from the signatures below.
"""

from __future__ import annotations

import gc
import os
import secrets
import time
from functools import partial
from http import HTTPStatus
from typing import Annotated, NamedTuple

import anyio.to_thread
import bentoml
from pydantic import Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse

from churnops.contract import configured_contract, derive_row_id
from churnops.model.reasons import Reason, top_reasons
from churnops.model.scoring import rows_to_frame
from churnops.monitoring import prediction_store
from churnops.records import ID_ATTRIBUTE, record_id, records_to_rows
from churnops.settings import Settings
from registry.mlflow_registry import MlflowModelRegistry
from serving.batcher import MicroBatcher, one_openmp_thread
from serving.champion import ChampionFollower, LoadedModel, alias_resolver, pinned_resolver
from serving.group_commit import GroupCommit
from serving.guard import RequestGuard
from serving.journal import JournalFull, PredictionJournal
from serving.prediction_log import PredictionLogger
from serving.routes import build_routes
from serving.schemas import FeedbackReceipt, ReasonCode, api_models
from serving.tokens import configured_tokens

MAX_BATCH = 1000
REASON_COUNT = 3
EXPLAIN_HELP = (
    "Also answer the top 3 reasons pushing each customer towards churn (log-odds "
    "contributions, see GET /model for the method); off, the request costs nothing extra."
)
MAX_FEEDBACK = 10_000
SETTINGS = Settings()
CONTRACT = configured_contract(SETTINGS.contract)
_MODELS = api_models(CONTRACT)
CustomerRecord = _MODELS.record
ChurnPrediction = _MODELS.prediction
BatchPrediction = _MODELS.batch
Feedback = _MODELS.feedback


class Scored(NamedTuple):
    """One scored customer: its request and customer ids, contract values, probability, the
    answer at the model's threshold, the model that scored it and, when asked for, reasons."""

    request_id: str
    customer_id: str | None
    row: list[object]
    score: float
    answer: str
    model: LoadedModel
    reasons: list[ReasonCode] | None = None


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
    status = service.follower.status()
    status["batching"] = service.batcher.stats()
    if service.logger is not None:
        status["prediction_log"] = {**service.logger.stats(), "commits": service.commit.stats()}
    return status


def _contract_status() -> dict[str, str]:
    return {"dataset": CONTRACT.dataset, "fingerprint": CONTRACT.fingerprint}


@bentoml.service(name="churn_prediction", traffic={"timeout": 30}, workers=SETTINGS.serving_workers)
class ChurnService:
    """Churn probability for customers of the configured data contract, from the current
    champion model."""

    def __init__(self) -> None:
        # Fail registry calls fast: the poller retries on its own schedule, and a slow call
        # must never hold up start-up.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        settings = SETTINGS
        registry = MlflowModelRegistry(
            settings.tracking_uri, settings.model_name, settings.experiment
        )
        if settings.model_uri:
            resolve = pinned_resolver(
                settings.model_uri,
                registry,
                lambda name: MlflowModelRegistry(settings.tracking_uri, name, settings.experiment),
            )
        else:
            resolve = alias_resolver(registry)
        self.follower = ChampionFollower(
            resolve,
            registry.load_model,
            settings.alias_poll_seconds,
            CONTRACT,
            load_reference=registry.load_reference,
        )
        # No I/O here: a store that is down at start must not stop serving (rows are buffered).
        self.store = prediction_store.connect(settings.prediction_store)
        self.logger = (
            PredictionLogger(
                partial(prediction_store.write_prediction_rows, self.store, CONTRACT),
                PredictionJournal(settings.journal_dir, settings.journal_max_bytes),
            )
            if settings.prediction_logging
            else None
        )
        self.commit = GroupCommit(self.logger.log) if self.logger is not None else None
        # Concurrent requests share model calls (see serving/batcher.py).
        self.batcher: MicroBatcher = MicroBatcher(
            self._score_rows, max_rows=MAX_BATCH, thread_setup=one_openmp_thread
        )
        self.follower.start()
        # Everything imported and loaded so far lives as long as the process: keep it out of
        # the collector's full passes, which otherwise stall requests (benchmarks/serving.py).
        gc.freeze()

    def __is_ready__(self) -> bool:
        return self.follower.current is not None

    @bentoml.on_shutdown
    def flush_prediction_log(self) -> None:
        """Graceful stop: every answered prediction reaches the store before exit."""
        self.follower.stop()
        if self.commit is not None:
            self.commit.close()
        if self.logger is not None:
            self.logger.close()

    def _score_rows(self, items: list[tuple[str, object]]) -> list[Scored]:
        """(request id, customer) pairs scored by one model in one call."""
        loaded = self._loaded()
        rows = records_to_rows([customer for _, customer in items], CONTRACT)
        return _scored(items, rows, loaded.score(rows), loaded)

    def _explained_rows(self, items: list[tuple[str, object]]) -> list[Scored]:
        """As `_score_rows`, with reason codes (off the micro-batcher: only explaining
        requests pay for them)."""
        loaded = self._loaded()
        if loaded.explainer is None:
            raise bentoml.exceptions.ServiceUnavailable(
                f"reason codes are unavailable for model version {loaded.version}: "
                f"{loaded.explain_error}"
            )
        rows = records_to_rows([customer for _, customer in items], CONTRACT)
        frame = rows_to_frame(rows, CONTRACT)
        reasons = top_reasons(loaded.explainer.explain(frame), frame, REASON_COUNT)
        explained = [[_reason(r) for r in why] for why in reasons]
        return _scored(items, rows, loaded.score(rows), loaded, explained)

    async def _journal(self, scored: list[Scored]) -> None:
        """On disk before the answer leaves (shared with every request syncing meanwhile)."""
        if self.commit is None:
            return
        try:
            await self.commit.commit(_log_rows(scored))
        except JournalFull as exc:  # never answer what cannot be kept
            raise bentoml.exceptions.ServiceUnavailable(str(exc)) from exc

    def _unknown_labels(self, labels: list[dict]) -> list[int]:
        """Labels naming no logged prediction; predictions answered a moment ago may still be
        in the journal, so it is shipped first and the labels checked again."""
        unknown = prediction_store.unknown_feedback(self.store, CONTRACT, labels)
        if unknown and self.logger is not None and self.logger.flush(timeout=5.0):
            unknown = prediction_store.unknown_feedback(self.store, CONTRACT, labels)
        return unknown

    def _loaded(self) -> LoadedModel:
        loaded = self.follower.current
        if loaded is None:
            raise bentoml.exceptions.ServiceUnavailable("no champion model loaded yet")
        return loaded

    async def _score(self, customers: list, explain: bool) -> BatchPrediction:  # type: ignore[valid-type]
        request = _request_id()
        ids = [f"{request}-{i}" for i in range(len(customers))] if len(customers) > 1 else [request]
        items = list(zip(ids, customers, strict=True))
        if explain:
            scored = await anyio.to_thread.run_sync(self._explained_rows, items)
        else:
            scored = await self.batcher.submit(items)
        await self._journal(scored)
        predictions = [
            ChurnPrediction(
                request_id=item.request_id,
                **{ID_ATTRIBUTE: item.customer_id},
                churn_probability=item.score,
                churn=item.answer,
                model_version=item.model.version,
                reasons=item.reasons,
            )
            for item in scored
        ]
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
            if unknown := self._unknown_labels(payload):
                return _unknown_labels_response(payload, unknown)  # type: ignore[return-value]
            stored = prediction_store.write_feedback(self.store, CONTRACT, payload)
        except SQLAlchemyError as exc:
            raise bentoml.exceptions.ServiceUnavailable("prediction store unavailable") from exc
        except prediction_store.StoreSchemaError as exc:  # made under another contract
            raise bentoml.exceptions.ServiceUnavailable(str(exc)) from exc
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


def _customer_id(customer: object, row: list[object]) -> str | None:
    """The id the client sent; under a contract without an id column, the one derived from the
    record's values (as cleaning derives it for a file)."""
    if CONTRACT.has_id:
        return record_id(customer)  # type: ignore[arg-type]
    return derive_row_id(row)


def _request_id() -> str:
    """32 hex characters, time first: ids of logged predictions arrive in order, so the store's
    primary-key index grows at its end instead of splitting pages all over (random ids made
    each logged row over twice as expensive once the table held 300k rows)."""
    return f"{time.time_ns():016x}{secrets.token_hex(8)}"


def _scored(
    items: list[tuple[str, object]],
    rows: list[list[object]],
    scores,
    loaded: LoadedModel,
    reasons: list[list[ReasonCode]] | None = None,
) -> list[Scored]:
    """Everything the answer and the log need, decided once (in the model-call thread)."""
    positive, negative = CONTRACT.target.positive_label, CONTRACT.target.negative_label
    return [
        Scored(
            request_id,
            _customer_id(customer, row),
            row,
            float(score),
            positive if score >= loaded.threshold else negative,
            loaded,
            reasons[i] if reasons is not None else None,
        )
        for i, ((request_id, customer), row, score) in enumerate(
            zip(items, rows, scores, strict=True)
        )
    ]


def _log_rows(scored: list[Scored]) -> list[tuple]:
    """Rows in `prediction_store.prediction_columns(CONTRACT)` order: plain tuples, cheap to
    build on the request path (checked against the store in
    tests/unit/serving/test_prediction_log.py)."""
    now = time.time()
    return [
        (
            item.request_id,
            now,
            item.model.version,
            item.customer_id,
            *item.row,
            item.score,
            item.answer,
        )
        for item in scored
    ]


ChurnService.mount_asgi_app(build_routes(_status), path="/")
# Deny by default: every route but the guard's open list (probes, docs, metrics, status) needs
# the token; the body limit and JSON-only apply to every request.
ChurnService.add_asgi_middleware(
    RequestGuard,
    max_body_bytes=SETTINGS.max_request_bytes,
    tokens=configured_tokens(SETTINGS),
)
