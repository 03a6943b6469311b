"""The BentoML prediction service: follows `models:/<name>@champion` on the MLflow server."""

from __future__ import annotations

import os
from typing import Annotated

import bentoml
from pydantic import Field

from churnops.evaluation import DECISION_THRESHOLD
from churnops.recipe import churn_probability
from churnops.records import CustomerRecord, records_to_frame
from churnops.settings import Settings
from registry.client import ChurnRegistry
from serving.champion import ChampionFollower, alias_resolver, mlflow_loader, pinned_resolver
from serving.routes import build_routes
from serving.schemas import BatchPrediction, ChurnPrediction

MAX_BATCH = 1000
_followers: list[ChampionFollower] = []


def _status() -> dict[str, object]:
    if not _followers:
        return {"ready": False, "last_error": "service starting"}
    return _followers[0].status()


@bentoml.service(name="churn_prediction", traffic={"timeout": 30})
class ChurnService:
    """Churn probability for Telco customers from the current champion model."""

    def __init__(self) -> None:
        # Fail registry calls fast: the poller retries on its own schedule, and a slow call
        # must never hold up start-up.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        settings = Settings()
        if settings.model_uri:
            resolve = pinned_resolver(settings.model_uri)
        else:
            resolve = alias_resolver(ChurnRegistry(settings.tracking_uri, settings.model_name))
        self.follower = ChampionFollower(
            resolve, mlflow_loader(settings.tracking_uri), settings.alias_poll_seconds
        )
        _followers.append(self.follower)
        self.follower.start()

    def __is_ready__(self) -> bool:
        return self.follower.current is not None

    def _score(self, customers: list) -> BatchPrediction:
        loaded = self.follower.current
        if loaded is None:
            raise bentoml.exceptions.ServiceUnavailable("no champion model loaded yet")
        scores = churn_probability(loaded.model, records_to_frame(customers))
        predictions = [
            ChurnPrediction(
                customerID=customer.customerID,
                churn_probability=float(score),
                churn="Yes" if score >= DECISION_THRESHOLD else "No",
                model_version=loaded.version,
            )
            for customer, score in zip(customers, scores, strict=True)
        ]
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
            Field(min_length=1, max_length=MAX_BATCH),
        ],
    ) -> BatchPrediction:
        """Score up to 1000 customers in one request."""
        return self._score(customers)


ChurnService.mount_asgi_app(build_routes(_status), path="/")
