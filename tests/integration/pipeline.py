"""Materialize the real asset graph in-process against a given MLflow server."""

from __future__ import annotations

import dagster as dg

from churnops.settings import Settings
from orchestration.definitions import build_resources, defs


def materialize_pipeline(
    tracking_uri: str, model_name: str, raise_on_error: bool = True, **settings: object
) -> dg.ExecuteInProcessResult:
    resources = build_resources(
        Settings(mlflow_tracking_uri=tracking_uri, model_name=model_name, **settings)
    )
    return dg.materialize(
        [*defs.assets, *defs.asset_checks], resources=resources, raise_on_error=raise_on_error
    )


def materialization_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset]]
    return dict(events[-1].event_specific_data.materialization.metadata)
