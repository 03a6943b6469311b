"""MLflow run logging for training candidates: model, params, tags, metrics and plots."""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import mlflow
import mlflow.data
import mlflow.sklearn
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from mlflow.data.pandas_dataset import PandasDataset
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from mlflow.types import Schema
from sklearn.pipeline import Pipeline

from churnops.contract import TARGET_COLUMN as TARGET
from churnops.model.recipe import TRUSTED_TYPES
from registry.signature import input_example, model_signature

MODEL_ARTIFACT = "model"
SCHEMA_SAMPLE_ROWS = 10_000


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    experiment_id: str
    model_uri: str
    model_id: str


def run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    return f"{tracking_uri}/#/experiments/{experiment_id}/runs/{run_id}"


def version_url(tracking_uri: str, model_name: str, version: str) -> str:
    return f"{tracking_uri}/#/models/{model_name}/versions/{version}"


def log_candidate(
    tracking_uri: str,
    experiment: str,
    run_name: str,
    model: Pipeline,
    params: dict[str, object],
    tags: dict[str, str],
    datasets: dict[str, pd.DataFrame] | None = None,
) -> LoggedRun:
    """One MLflow run per candidate, holding the model with the contract's signature.

    `datasets` (context → frame, e.g. train/holdout) become the run's dataset inputs, so the
    MLflow UI shows what the model saw, with digest, schema and row count."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    experiment_id = mlflow.set_experiment(experiment).experiment_id
    with mlflow.start_run(run_name=run_name, tags=tags) as run:
        mlflow.log_params(params)
        for context, frame in (datasets or {}).items():
            mlflow.log_input(_dataset(frame, f"customers-{context}"), context=context)
        info = mlflow.sklearn.log_model(
            model,
            name=MODEL_ARTIFACT,
            signature=model_signature(),
            input_example=input_example(),
            pyfunc_predict_fn="predict_proba",
            skops_trusted_types=TRUSTED_TYPES,
        )
    return LoggedRun(run.info.run_id, experiment_id, info.model_uri, info.model_id)


def schema_sample(frame: pd.DataFrame, rows: int = SCHEMA_SAMPLE_ROWS) -> pd.DataFrame:
    """The first `rows` rows plus each column's first missing value, so a schema inferred from
    the sample marks the same columns optional as one inferred from the whole frame."""
    missing = frame.isna()
    firsts = [int(missing[c].to_numpy().argmax()) for c in frame.columns if missing[c].any()]
    picked = sorted(set(range(min(rows, len(frame)))) | set(firsts))
    return frame.iloc[picked]


class SampledSchemaDataset(PandasDataset):
    """MLflow's pandas dataset with its schema inferred from `schema_sample`: MLflow's own
    inference visits every cell of every string column: 21 s for an 800k-row training set."""

    @cached_property
    def schema(self) -> Schema | None:
        with warnings.catch_warnings():
            # A hint meant for model signatures; a dataset's schema is only descriptive.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            return infer_signature(schema_sample(self.df)).inputs


def _dataset(frame: pd.DataFrame, name: str) -> SampledSchemaDataset:
    described = mlflow.data.from_pandas(frame, name=name, targets=TARGET)  # source and digest
    return SampledSchemaDataset(frame, described.source, TARGET, name, described.digest)


def log_metrics_and_figures(
    tracking_uri: str,
    run_id: str,
    metrics: dict[str, float],
    figures: dict[str, Figure],
    folder: str = "evaluation",
) -> None:
    """Attach holdout metrics and plots to an existing run (closing the figures)."""
    client = MlflowClient(tracking_uri=tracking_uri)
    for key, value in metrics.items():
        client.log_metric(run_id, key, value)
    for name, figure in figures.items():
        client.log_figure(run_id, figure, f"{folder}/{name}")
        plt.close(figure)


def load_model(tracking_uri: str, model_uri: str) -> Pipeline:
    """Load a registered sklearn pipeline (e.g. `models:/churn/3`) through the MLflow server."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return mlflow.sklearn.load_model(model_uri)


REFERENCE_ARTIFACT = "reference/reference.parquet"


def log_reference(tracking_uri: str, run_id: str, frame: pd.DataFrame) -> None:
    """Store the training reference (features + scores) that monitoring compares traffic with."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
        frame.to_parquet(path, index=False)
        MlflowClient(tracking_uri=tracking_uri).log_artifact(
            run_id, str(path), str(Path(REFERENCE_ARTIFACT).parent)
        )


def load_reference(tracking_uri: str, run_id: str) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        local = MlflowClient(tracking_uri=tracking_uri).download_artifacts(
            run_id, REFERENCE_ARTIFACT, tmp
        )
        return pd.read_parquet(local)
