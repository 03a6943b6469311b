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
        return True, f"serving version {body.get('model_version')}{_serving_caveat(body)}"
    return False, f"up, no model loaded yet: {body.get('last_error') or 'waiting for @champion'}"


def _serving_caveat(body: dict) -> str:
    """Why the served version may not be the champion: a refused one, else the last error."""
    if body.get("refused_version"):
        reason = body.get("refused_reason") or "no reason given"
        return f" (refused version {body['refused_version']}: {reason})"
    if body.get("degraded"):
        return f" (degraded: {body.get('last_error') or 'registry unreachable'})"
    return ""


def _answers(response: httpx.Response | None) -> bool:
    return response is not None and response.status_code == 200


def _plain_probe(name: str, url: str, health_path: str, timeout: float) -> ServiceProbe:
    up = _answers(_get(f"{url}{health_path}", timeout))
    return ServiceProbe(name, url, up, "up" if up else "not reachable")


def probe_services(settings: Settings, timeout: float = 2.0) -> list[ServiceProbe]:
    serving_up, serving = _serving_detail(_get(f"{settings.bento_url}/model", timeout))
    return [
        _plain_probe("MLflow (tracking, registry, UI)", settings.tracking_uri, "/health", timeout),
        _plain_probe("Dagster (UI, GraphQL)", settings.dagster_url, "/server_info", timeout),
        ServiceProbe("Prediction API (Bento)", f"{settings.bento_url}/docs", serving_up, serving),
    ]
