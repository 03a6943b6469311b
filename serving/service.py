"""The BentoML prediction service: follows `models:/<name>@champion` on the MLflow server and
logs every prediction to the prediction store."""

from __future__ import annotations

import os
import time
import uuid
from functools import partial
from http import HTTPStatus
from typing import Annotated

import bentoml
from pydantic import Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse

from churnops import prediction_store
from churnops.contract import FEATURE_NAMES, ID_COLUMN
from churnops.evaluation import DECISION_THRESHOLD
from churnops.recipe import churn_probability
from churnops.records import CustomerRecord, records_to_frame
from churnops.settings import Settings
from registry.client import ChurnRegistry
from serving.champion import ChampionFollower, alias_resolver, mlflow_loader, pinned_resolver
from serving.guard import RequestGuard
from serving.prediction_log import PredictionLogger
from serving.routes import build_routes
from serving.schemas import BatchPrediction, ChurnPrediction, Feedback, FeedbackReceipt

MAX_BATCH = 1000
MAX_FEEDBACK = 10_000
SETTINGS = Settings()
_instances: list[ChurnService] = []


def _status() -> dict[str, object]:
    if not _instances:
        return {"ready": False, "last_error": "service starting"}
    service = _instances[0]
    status = service.follower.status()
    if service.logger is not None:
        status["prediction_log"] = service.logger.stats()
    return status


@bentoml.service(name="churn_prediction", traffic={"timeout": 30})
class ChurnService:
    """Churn probability for Telco customers from the current champion model."""

    def __init__(self) -> None:
        # Fail registry calls fast: the poller retries on its own schedule, and a slow call
        # must never hold up start-up.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        settings = SETTINGS
        if settings.model_uri:
            resolve = pinned_resolver(settings.model_uri)
        else:
            resolve = alias_resolver(ChurnRegistry(settings.tracking_uri, settings.model_name))
        self.follower = ChampionFollower(
            resolve, mlflow_loader(settings.tracking_uri), settings.alias_poll_seconds
        )
        # No I/O here: a store that is down at start must not stop serving (rows are buffered).
        self.store = prediction_store.connect(settings.prediction_store, create_tables=False)
        self.logger = (
            PredictionLogger(partial(prediction_store.write_predictions, self.store))
            if settings.prediction_logging
            else None
        )
        _instances.append(self)
        self.follower.start()

    def __is_ready__(self) -> bool:
        return self.follower.current is not None

    @bentoml.on_shutdown
    def flush_prediction_log(self) -> None:
        """Graceful stop: every answered prediction reaches the store before exit."""
        self.follower.stop()
        if self.logger is not None:
            self.logger.close()

    def _score(self, customers: list) -> BatchPrediction:
        loaded = self.follower.current
        if loaded is None:
            raise bentoml.exceptions.ServiceUnavailable("no champion model loaded yet")
        scores = churn_probability(loaded.model, records_to_frame(customers))
        request = uuid.uuid4().hex
        predictions = [
            ChurnPrediction(
                request_id=f"{request}-{i}" if len(customers) > 1 else request,
                customerID=customer.customerID,
                churn_probability=float(score),
                churn="Yes" if score >= DECISION_THRESHOLD else "No",
                model_version=loaded.version,
            )
            for i, (customer, score) in enumerate(zip(customers, scores, strict=True))
        ]
        if self.logger is not None:
            self.logger.log(_log_rows(customers, predictions))
        return BatchPrediction(model_version=loaded.version, predictions=predictions)

    @bentoml.api(route="/predict")
    def predict(self, customer: CustomerRecord) -> ChurnPrediction:  # type: ignore[valid-type]
        """Score one customer."""
        return self._score([customer]).predictions[0]

    @bentoml.api(route="/predict_batch")
    def predict_batch(
        self,
        customers: Annotated[
            list[CustomerRecord],  # type: ignore[valid-type]
            Field(min_length=1, json_schema_extra={"maxItems": MAX_BATCH}),
        ],
    ) -> BatchPrediction:
        """Score up to 1000 customers in one request (more gets HTTP 413)."""
        if too_many := _over_limit("customers", len(customers), MAX_BATCH):
            return too_many  # type: ignore[return-value]
        return self._score(customers)

    @bentoml.api(route="/feedback")
    def feedback(
        self,
        labels: Annotated[
            list[Feedback], Field(min_length=1, json_schema_extra={"maxItems": MAX_FEEDBACK})
        ],
    ) -> FeedbackReceipt:
        """Store ground-truth labels that arrived after the prediction (joined by id later)."""
        if too_many := _over_limit("labels", len(labels), MAX_FEEDBACK):
            return too_many  # type: ignore[return-value]
        try:
            stored = prediction_store.write_feedback(
                self.store, (label.model_dump() for label in labels)
            )
        except SQLAlchemyError as exc:
            raise bentoml.exceptions.ServiceUnavailable("prediction store unavailable") from exc
        return FeedbackReceipt(stored=stored)


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


def _log_rows(customers: list, predictions: list[ChurnPrediction]) -> list[dict[str, object]]:
    now = time.time()
    return [
        {
            "request_id": prediction.request_id,
            "ts": now,
            "model_version": prediction.model_version,
            ID_COLUMN: prediction.customerID,
            **{name: getattr(customer, name) for name in FEATURE_NAMES},
            "churn_probability": prediction.churn_probability,
            "churn": prediction.churn,
        }
        for customer, prediction in zip(customers, predictions, strict=True)
    ]


ChurnService.mount_asgi_app(build_routes(_status), path="/")
ChurnService.add_asgi_middleware(
    RequestGuard,
    protected_paths=("/predict", "/predict_batch", "/feedback"),
    max_body_bytes=SETTINGS.max_request_bytes,
    token=SETTINGS.api_token.get_secret_value() if SETTINGS.api_token else None,
)
