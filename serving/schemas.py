"""Response models of the prediction API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ChurnPrediction(BaseModel):
    customerID: str | None = Field(None, description="Echo of the request's customer id.")
    churn_probability: float = Field(ge=0.0, le=1.0, description="Probability of churn.")
    churn: Literal["Yes", "No"] = Field(description="Label at the decision threshold.")
    model_version: str = Field(description="Registered model version that scored this row.")


class BatchPrediction(BaseModel):
    model_version: str = Field(description="Registered model version that scored the batch.")
    predictions: list[ChurnPrediction]
