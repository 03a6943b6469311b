"""Request and response models of the prediction API, generated from the data contract.

The answer's key field is the contract's id name (`customerID` for Telco; a derived `row_id`
when the contract has no id column) and `churn` uses the target's own labels, so a client sees
its dataset's vocabulary, never the Telco one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    create_model,
    model_validator,
)

from churnops.contract import Contract
from churnops.records import ID_ATTRIBUTE, IdText, record_model

# Attribute of the label field of feedback, whatever the contract's target is called.
LABEL_ATTRIBUTE = "label"
MAX_REQUEST_ID_LENGTH = 64
# Records per /predict_batch request, and so the most one model call takes (serving/runtime.py).
MAX_BATCH = 1000


class ReasonCode(BaseModel):
    """One reason a customer's churn risk is high: a field, its value and how much it adds."""

    feature: str = Field(description="The data contract's field.")
    value: StrictBool | StrictInt | StrictFloat | StrictStr | None = Field(
        description="The customer's value (null when missing)."
    )
    log_odds: float = Field(description="What it adds to the churn log-odds (positive).")
    text: str = Field(description="Readable reason, e.g. `Contract is Month-to-month`.")


class FeedbackReceipt(BaseModel):
    stored: int = Field(description="Labels written to the prediction store.")


@dataclass(frozen=True)
class ApiModels:
    """Everything the service's signatures need for one contract."""

    record: type[BaseModel]
    prediction: type[BaseModel]
    batch: type[BaseModel]
    feedback: type[BaseModel]


def _prediction_model(contract: Contract) -> type[BaseModel]:
    target = contract.target
    if contract.has_id:
        id_field: tuple[Any, Any] = (
            str | None,
            Field(
                None,
                alias=contract.id_name,
                description="Echo of the request's customer id.",
                # BentoML's spec keeps only the first `anyOf` branch of a response field; say
                # `null` is allowed the OpenAPI 3.0 way (found by tests/integration/test_fuzz.py).
                json_schema_extra={"nullable": True},
            ),
        )
    else:
        id_field = (
            str,
            Field(
                alias=contract.id_name,
                description="Id derived from the record's values: the same customer sent "
                "again gets the same id (send it back with the label).",
            ),
        )
    return create_model(  # type: ignore[call-overload]
        "ChurnPrediction",
        __config__=ConfigDict(serialize_by_alias=True, validate_by_name=True),
        request_id=(str, Field(description="Id of this prediction; send it back with the label.")),
        **{ID_ATTRIBUTE: id_field},
        churn_probability=(float, Field(ge=0.0, le=1.0, description="Probability of churn.")),
        churn=(
            Literal[target.positive_label, target.negative_label],  # type: ignore[valid-type]
            Field(description="Label at the decision threshold."),
        ),
        model_version=(str, Field(description="Registered model version that scored this row.")),
        reasons=(
            list[ReasonCode] | None,
            Field(
                None,
                description="With `explain: true`: up to 3 reasons pushing towards churn, "
                "largest first.",
                json_schema_extra={"nullable": True},
            ),
        ),
    )


def _batch_model(prediction: type[BaseModel]) -> type[BaseModel]:
    return create_model(  # type: ignore[call-overload]
        "BatchPrediction",
        __config__=ConfigDict(serialize_by_alias=True),
        model_version=(str, Field(description="Registered model version that scored the batch.")),
        predictions=(list[prediction], ...),  # type: ignore[valid-type]
    )


def _feedback_model(contract: Contract) -> type[BaseModel]:
    target = contract.target
    accepted = [*target.positive, *target.negative]

    def canonical(value: object) -> str:
        label = target.canonical(value)
        if label is None:
            raise ValueError(f"{value!r} is not a label of '{target.name}'; use one of {accepted}")
        return label

    def needs_an_id(feedback: BaseModel) -> BaseModel:
        if not feedback.request_id and not getattr(feedback, ID_ATTRIBUTE):  # type: ignore[attr-defined]
            raise ValueError(f"give request_id or {contract.id_name}")
        return feedback

    label_type = Annotated[
        StrictBool | StrictInt | StrictFloat | StrictStr, AfterValidator(canonical)
    ]
    return create_model(  # type: ignore[call-overload]
        "Feedback",
        __config__=ConfigDict(extra="forbid", serialize_by_alias=True),
        __doc__=(
            f"A ground-truth label that arrived later, for a request id and/or a "
            f"{contract.id_name}."
        ),
        __validators__={"needs_an_id": model_validator(mode="after")(needs_an_id)},
        request_id=(
            str | None,
            Field(None, max_length=MAX_REQUEST_ID_LENGTH, description="From a prediction."),
        ),
        **{
            ID_ATTRIBUTE: (
                IdText | None,
                Field(
                    None,
                    alias=contract.id_name,
                    max_length=max(contract.max_id_length, MAX_REQUEST_ID_LENGTH),
                    description="Labels the latest prediction for this id.",
                ),
            ),
            LABEL_ATTRIBUTE: (
                label_type,
                Field(
                    alias=target.name,
                    description=f"Did the customer churn? One of {accepted}.",
                    json_schema_extra={"example": target.positive_label},
                ),
            ),
        },
    )


def api_models(contract: Contract) -> ApiModels:
    """The request, answer and feedback models for `contract`."""
    prediction = _prediction_model(contract)
    return ApiModels(
        record=record_model(contract),
        prediction=prediction,
        batch=_batch_model(prediction),
        feedback=_feedback_model(contract),
    )
