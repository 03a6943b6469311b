"""Response models of the prediction API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ChurnPrediction(BaseModel):
    request_id: str = Field(description="Id of this prediction; send it back with the label.")
    customerID: str | None = Field(
        None,
        description="Echo of the request's customer id.",
        # BentoML's spec keeps only the first `anyOf` branch of a response field; say `null`
        # is allowed the OpenAPI 3.0 way (found by tests/integration/test_fuzz.py).
        json_schema_extra={"nullable": True},
    )
    churn_probability: float = Field(ge=0.0, le=1.0, description="Probability of churn.")
    churn: Literal["Yes", "No"] = Field(description="Label at the decision threshold.")
    model_version: str = Field(description="Registered model version that scored this row.")


class BatchPrediction(BaseModel):
    model_version: str = Field(description="Registered model version that scored the batch.")
    predictions: list[ChurnPrediction]


class Feedback(BaseModel):
    """A ground-truth label that arrived later, for a request id and/or a customer id."""

    model_config = ConfigDict(extra="forbid")

    request_id: str | None = Field(None, max_length=64, description="From a prediction response.")
    customerID: str | None = Field(None, max_length=64, description="Labels the latest record.")
    Churn: Literal["Yes", "No"] = Field(description="Did the customer churn?")

    @model_validator(mode="after")
    def _needs_an_id(self) -> Feedback:
        if not self.request_id and not self.customerID:
            raise ValueError("give request_id or customerID")
        return self


class FeedbackReceipt(BaseModel):
    stored: int = Field(description="Labels written to the prediction store.")
