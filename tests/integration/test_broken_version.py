"""A broken or incompatible version promoted to `@champion` is refused by a real Bento server:
the old champion keeps answering every request, and `GET /model` names the refused version
and why: one trained on another data contract, one that cannot score the contract's records,
one whose artifact is garbage."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import mlflow.sklearn
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from churnops.contract import parse_contract, telco_contract
from registry.interface import contract_tags
from registry.mlflow_registry import MlflowModelRegistry
from tests.conftest import BentoServer, start_bento, wait_ready
from tests.integration.pipeline import materialize_pipeline

pytestmark = pytest.mark.integration

MODEL = "churn-broken-versions"
EXPERIMENT = "churn-broken-versions"
TELCO = telco_contract()
EXAMPLE = TELCO.example_record()
# Another dataset's contract: a version trained on it must never answer Telco requests.
GYM = parse_contract(
    {
        "dataset": "gym-members",
        "target": {"name": "left", "positive": [1], "negative": [0]},
        "features": [
            {"name": "visits", "kind": "numeric"},
            {"name": "club", "kind": "categorical"},
        ],
    },
    "test",
)


class Traffic:
    """One client posting /predict until stopped, counting answers by status and version."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: Counter[tuple[int, str | None]] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self._stop.is_set():
                response = http.post("/predict", json={"customer": EXAMPLE})
                version = response.json().get("model_version") if response.is_success else None
                self.seen[(response.status_code, version)] += 1

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def _other_contract_version(registry: MlflowModelRegistry) -> str:
    """A sound model of another dataset, registered with that dataset's contract."""
    frame = pd.DataFrame({"visits": [1.0, 9.0, 2.0, 8.0], "club": ["a", "b", "a", "b"]})
    encode = ColumnTransformer([("club", OneHotEncoder(), ["club"])], remainder="passthrough")
    model = Pipeline([("preprocess", encode), ("model", LogisticRegression())])
    model.fit(frame, [0, 1, 0, 1])
    run = registry.log_candidate("gym", model, {}, {}, contract=GYM)
    return registry.register(run, {"test": "other contract"})


def _incompatible_version(registry: MlflowModelRegistry) -> str:
    """A valid sklearn model trained on other columns but tagged with the Telco contract: it
    loads but cannot score a contract record."""
    frame = pd.DataFrame({"age_days": [1.0, 2.0, 3.0, 4.0], "spend": [9.0, 1.0, 8.0, 2.0]})
    model = LogisticRegression().fit(frame, [0, 1, 0, 1])
    run = registry.log_candidate("incompatible", model, {}, {}, contract=TELCO)
    return registry.register(run, {"test": "x"})


def corrupted_version(registry: MlflowModelRegistry, tmp_path: Path) -> str:
    """A model directory whose serialized model is garbage: it cannot even be loaded (a version
    of `registry`'s model, its run in `registry`'s experiment)."""
    folder = tmp_path / "corrupted"
    mlflow.sklearn.save_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), folder)
    for artifact in folder.glob("model.*"):
        artifact.write_bytes(b"not a model")
    client = registry.client
    experiment_id = client.get_experiment_by_name(registry.experiment).experiment_id
    run_id = client.create_run(experiment_id, run_name="corrupted").info.run_id
    client.log_artifacts(run_id, str(folder), "model")
    client.set_terminated(run_id)
    mv = client.create_model_version(
        registry.model_name,
        source=f"runs:/{run_id}/model",
        run_id=run_id,
        tags=contract_tags(TELCO),
    )
    return str(mv.version)


def wait_refused(server: BentoServer, version: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = httpx.get(f"{server.url}/model").json()
        if status["refused_version"] == version:
            return status
        assert time.monotonic() < deadline, f"version {version} never refused: {status}"
        time.sleep(0.5)


def test_broken_champions_are_refused_and_the_old_one_keeps_serving(
    tmp_path: Path,
    mlflow_uri: str,
    figures,
) -> None:
    good = materialize_pipeline(mlflow_uri, MODEL, synthetic_rows=5_000).output_for_node(
        "champion_version"
    )
    registry = MlflowModelRegistry(mlflow_uri, MODEL, EXPERIMENT)
    server = start_bento(tmp_path, mlflow_uri, MODEL)
    try:
        wait_ready(server)
        with Traffic(server.url) as traffic:
            other = _other_contract_version(registry)
            registry.promote(other, "test: trained on another contract")
            status = wait_refused(server, other)
            assert "trained on contract gym-members" in status["refused_reason"]
            assert (
                f"not on telco-churn (fingerprint {TELCO.fingerprint})"
                in (status["refused_reason"])
            )
            assert status["contract"] == {
                "dataset": "telco-churn",
                "fingerprint": TELCO.fingerprint,
            }
            assert status["model_version"] == good and status["degraded"]

            incompatible = _incompatible_version(registry)
            registry.promote(incompatible, "test: trained on other columns")
            status = wait_refused(server, incompatible)
            assert "feature names" in status["refused_reason"].lower()
            assert status["model_version"] == good and status["degraded"]

            corrupted = corrupted_version(registry, tmp_path)
            registry.promote(corrupted, "test: corrupted artifact")
            status = wait_refused(server, corrupted)
            assert status["refused_reason"] and status["model_version"] == good
            assert httpx.get(f"{server.url}/readyz").status_code == 200

            registry.promote(good, "test: the good champion again")
            deadline = time.monotonic() + 60
            while httpx.get(f"{server.url}/model").json()["refused_version"] is not None:
                assert time.monotonic() < deadline, "refusal never cleared"
                time.sleep(0.5)
        figures(f"\nbroken versions: answers during the faults {dict(traffic.seen)}")
        assert set(traffic.seen) == {(200, good)}, traffic.seen
        assert sum(traffic.seen.values()) >= 20
        status = httpx.get(f"{server.url}/model").json()
        assert status["model_version"] == good and not status["degraded"]
    finally:
        server.stop()
