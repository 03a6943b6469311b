"""Materialize the real training graph in-process against a given MLflow server."""

from __future__ import annotations

import dagster as dg

from churnops.settings import Settings
from orchestration.definitions import build_resources, defs
from orchestration.jobs import TRAINING_GROUPS


def materialize_pipeline(
    tracking_uri: str,
    model_name: str,
    raise_on_error: bool = True,
    store_url: str = "sqlite://",
    instance: dg.DagsterInstance | None = None,
    **settings: object,
) -> dg.ExecuteInProcessResult:
    """`store_url` is the prediction store retraining reads labelled traffic from (default:
    an empty in-memory one); `instance` lets a test watch the run's event log as it runs."""
    resources = build_resources(
        Settings(
            mlflow_tracking_uri=tracking_uri,
            model_name=model_name,
            prediction_store_url=store_url,
            **settings,
        )
    )
    return dg.materialize(
        [*defs.assets, *defs.asset_checks],
        selection=dg.AssetSelection.groups(*TRAINING_GROUPS),
        resources=resources,
        instance=instance,
        raise_on_error=raise_on_error,
    )


def materialization_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset]]
    return dict(events[-1].event_specific_data.materialization.metadata)
