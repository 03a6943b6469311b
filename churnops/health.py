"""Is each service of the platform answering, and what does the prediction API serve?"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from churnops.settings import Settings


@dataclass(frozen=True)
class ServiceProbe:
    name: str
    url: str
    up: bool
    detail: str


def _get(url: str, timeout: float) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=timeout)
    except httpx.HTTPError:
        return None


def _serving_detail(response: httpx.Response | None) -> tuple[bool, str]:
    if response is None:
        return False, "not reachable"
    try:
        body = response.json()
    except ValueError:
        return False, f"HTTP {response.status_code}"
    if body.get("ready"):
        degraded = " (degraded: registry unreachable)" if body.get("degraded") else ""
        return True, f"serving version {body.get('model_version')}{degraded}"
    return False, f"up, no model loaded yet: {body.get('last_error') or 'waiting for @champion'}"


def probe_services(settings: Settings, timeout: float = 2.0) -> list[ServiceProbe]:
    mlflow = _get(f"{settings.tracking_uri}/health", timeout)
    dagster = _get(f"{settings.dagster_url}/server_info", timeout)
    serving_up, serving = _serving_detail(_get(f"{settings.bento_url}/model", timeout))
    return [
        ServiceProbe(
            "MLflow (tracking, registry, UI)",
            settings.tracking_uri,
            mlflow is not None and mlflow.status_code == 200,
            "up" if mlflow is not None and mlflow.status_code == 200 else "not reachable",
        ),
        ServiceProbe(
            "Dagster (UI, GraphQL)",
            settings.dagster_url,
            dagster is not None and dagster.status_code == 200,
            "up" if dagster is not None and dagster.status_code == 200 else "not reachable",
        ),
        ServiceProbe("Prediction API (Bento)", f"{settings.bento_url}/docs", serving_up, serving),
    ]
