"""Registry outages against real processes: serving starts without MLflow and recovers, and
keeps serving its loaded champion (reporting degraded) when MLflow goes away."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from churnops.contract import telco_contract
from tests.conftest import restartable_mlflow, start_bento, wait_ready
from tests.integration.pipeline import materialize_pipeline

pytestmark = pytest.mark.integration

TELCO = telco_contract()
example_record = TELCO.example_record

MODEL = "churn-faults"


def test_serving_survives_mlflow_outages(tmp_path: Path) -> None:
    uri, registry_server = restartable_mlflow(tmp_path)

    with registry_server():
        champion = materialize_pipeline(uri, MODEL, synthetic_rows=5_000).output_for_node(
            "champion_version"
        )
    # MLflow is down while the service starts: not ready, with the reason, retrying.
    bento = start_bento(tmp_path, uri, MODEL, CHURNOPS_ALIAS_POLL_SECONDS="4")
    try:
        assert httpx.get(f"{bento.url}/readyz").status_code == 503
        status = httpx.get(f"{bento.url}/model").json()
        assert status["ready"] is False and "Connection" in status["last_error"]
        assert status["consecutive_failures"] >= 1
        with registry_server():
            wait_ready(bento, timeout=60)
        # MLflow went away again: the loaded champion keeps answering, marked degraded.
        deadline = time.monotonic() + 30
        while not httpx.get(f"{bento.url}/model").json()["degraded"]:
            assert time.monotonic() < deadline, "outage never reported"
            time.sleep(0.5)
        for _ in range(20):
            response = httpx.post(f"{bento.url}/predict", json={"customer": example_record()})
            assert response.status_code == 200
            assert response.json()["model_version"] == champion
        assert httpx.get(f"{bento.url}/readyz").status_code == 200
    finally:
        bento.stop()
