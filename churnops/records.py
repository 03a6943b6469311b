"""Pydantic request/record models generated from the data contract (serving's input schema)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from churnops.contract import (
    FEATURE_NAMES,
    FEATURES,
    ID_COLUMN,
    MAX_ID_LENGTH,
    FeatureSpec,
    example_record,
)


def _field(spec: FeatureSpec) -> tuple[Any, Any]:
    if spec.kind == "categorical":
        annotation: Any = Literal[spec.categories]  # type: ignore[valid-type]
        return annotation, Field(
            description=spec.description, json_schema_extra={"example": spec.example}
        )
    python_type = int if spec.kind == "integer" else float
    annotation = python_type | None if spec.nullable else python_type
    default = None if spec.nullable else ...
    return annotation, Field(
        default,
        ge=spec.minimum,
        le=spec.maximum,
        strict=True,
        description=spec.description,
        json_schema_extra={"example": spec.example},
    )


class _RecordBase(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        # BentoML's OpenAPI model knows the singular `example` keyword only.
        json_schema_extra={"example": example_record()},
    )


CustomerRecord: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "CustomerRecord",
    __base__=_RecordBase,
    __doc__="One customer in the Telco churn schema (the label `Churn` is not sent).",
    **{
        ID_COLUMN: (
            str | None,
            Field(
                None, max_length=MAX_ID_LENGTH, description="Customer id, echoed back for joins."
            ),
        )
    },
    **{spec.name: _field(spec) for spec in FEATURES},
)


def records_to_rows(records: Sequence[BaseModel]) -> list[list[object]]:
    """Raw values in contract order, the input of `recipe.scorer` (None is missing)."""
    return [[getattr(record, name) for name in FEATURE_NAMES] for record in records]
