"""The MLflow model signature and input example, derived from the data contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema, TensorSpec

from churnops.contract import FEATURE_NAMES, FEATURES, example_record

_MLFLOW_TYPES = {"categorical": "string", "integer": "long", "float": "double"}


def model_signature() -> ModelSignature:
    """Inputs are the raw contract fields; the output is predict_proba's (n, 2) matrix."""
    inputs = Schema(
        [
            ColSpec(_MLFLOW_TYPES[spec.kind], spec.name, required=not spec.nullable)
            for spec in FEATURES
        ]
    )
    outputs = Schema([TensorSpec(np.dtype("float64"), (-1, 2), "churn_probabilities")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_example() -> pd.DataFrame:
    record = example_record()
    return pd.DataFrame([{name: record[name] for name in FEATURE_NAMES}])
