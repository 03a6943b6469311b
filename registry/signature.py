"""The MLflow model signature and input example, derived from the data contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema, TensorSpec

from churnops.contract import Contract, Feature, parse_boolean


def column_type(feature: Feature) -> str:
    """The MLflow type of a feature as the model receives it: categories as strings, booleans
    as 0/1 numbers, and a nullable integer as a double (cleaning types it float to hold NaN)."""
    if feature.kind == "categorical":
        return "string"
    if feature.kind == "integer" and not feature.nullable:
        return "long"
    return "double"


def model_signature(contract: Contract) -> ModelSignature:
    """Inputs are the raw contract fields; the output is predict_proba's (n, 2) matrix."""
    inputs = Schema(
        [
            ColSpec(column_type(feature), feature.name, required=not feature.nullable)
            for feature in contract.features
        ]
    )
    outputs = Schema([TensorSpec(np.dtype("float64"), (-1, 2), "churn_probabilities")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def _example_cell(feature: Feature) -> object:
    value = feature.example_value()
    if value is None:
        return None
    kind = column_type(feature)
    if kind == "string":
        return str(value)
    if feature.kind == "boolean":
        flag = parse_boolean(value)
        return None if flag is None else float(flag)
    return int(value) if kind == "long" else float(value)


def input_example(contract: Contract) -> pd.DataFrame:
    """One row of the contract's documented examples, typed as the signature says."""
    return pd.DataFrame([{feature.name: _example_cell(feature) for feature in contract.features}])
