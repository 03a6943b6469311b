"""Dagster asset conventions and metadata helpers (plots as inline images, frames as tables)."""

import base64
import io
import json

import dagster as dg
import pandas as pd
from matplotlib.figure import Figure

OWNERS = ["team:ml-platform"]
CODE_VERSION = "1"
# Steps that talk to MLflow or the prediction store outlive an outage of either of up to about
# two minutes (a slow server restart): Dagster waits 2 * (2**n - 1) s before retry n, i.e. 2, 6,
# 14, 30, 62 s, each +/- 2 s of jitter so retrying steps do not stampede a recovering server.
EXTERNAL_RETRY = dg.RetryPolicy(
    max_retries=5, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


# Kubernetes resources of each step pod under dagster-k8s `k8s_job_executor` (one Job per op), by
# asset group. Training fits the model and evaluates it, so it gets the most memory; the gate and
# the drift report load two models or a window of traffic. The in-process and docker executors
# ignore the `dagster-k8s/config` tag.
SMALL_STEP = {
    "requests": {"cpu": "250m", "memory": "512Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}
MEDIUM_STEP = {
    "requests": {"cpu": "500m", "memory": "1Gi"},
    "limits": {"cpu": "1", "memory": "2Gi"},
}
LARGE_STEP = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
K8S_STEP_RESOURCES = {
    "training": LARGE_STEP,
    "deployment": MEDIUM_STEP,
    "monitoring": MEDIUM_STEP,
    "prediction_log": MEDIUM_STEP,
    "scoring": LARGE_STEP,
}


def k8s_step_tags(group: str) -> dict[str, str]:
    """The `dagster-k8s/config` op tag sizing a group's step pods (JSON: tag values are strings)."""
    resources = K8S_STEP_RESOURCES.get(group, SMALL_STEP)
    return {"dagster-k8s/config": json.dumps({"container_config": {"resources": resources}})}


def platform_asset(group: str, *kinds: str, external: bool = False, **asset_options):
    """`dg.asset` with the platform's conventions: a group per service, kinds, owner, version;
    `external` assets (calling MLflow or the prediction store) retry with backoff. Failures that
    retrying cannot fix should raise `dg.Failure(..., allow_retries=False)`. Other `dg.asset`
    options (partitions, deps) pass through."""
    return dg.asset(
        **asset_options,
        group_name=group,
        kinds=set(kinds),
        owners=OWNERS,
        code_version=CODE_VERSION,
        retry_policy=EXTERNAL_RETRY if external else None,
        op_tags=k8s_step_tags(group),
    )


def figure_markdown(figure: Figure, title: str) -> dg.MetadataValue:
    """Render a figure to PNG and embed it, so the plot shows on the materialization page."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")


def frame_preview(frame: pd.DataFrame, rows: int = 5) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False))
