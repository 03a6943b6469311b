"""A real Bento server subprocess, called over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from churnops.contract import example_record
from churnops.data.cleaning import clean_customers
from churnops.data.synthetic import generate_customers
from churnops.model import recipes
from registry.mlflow_registry import MlflowModelRegistry
from tests.conftest import start_bento, wait_ready
from tests.integration.pipeline import materialize_pipeline

pytestmark = pytest.mark.integration

MODEL = "churn-serving"


@pytest.fixture(scope="module")
def champion(mlflow_uri: str) -> str:
    result = materialize_pipeline(mlflow_uri, MODEL, synthetic_rows=20_000)
    return result.output_for_node("champion_version")


@pytest.fixture(scope="module")
def bento(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str, champion: str):
    server = start_bento(tmp_path_factory.mktemp("bento"), mlflow_uri, MODEL)
    wait_ready(server)
    yield server
    server.stop()


def register_other_model(mlflow_uri: str) -> str:
    """A logistic-regression version, registered without going through the gate."""
    frame = clean_customers(generate_customers(5_000, seed=3), "synthetic").frame
    model = recipes.train(frame, "logistic_regression", seed=0)
    registry = MlflowModelRegistry(mlflow_uri, MODEL, "serving-tests")
    return registry.register(registry.log_candidate("lr", model, {"recipe": "lr"}, {}), {})


def test_predict_returns_probability_from_champion(bento, champion: str) -> None:
    response = httpx.post(f"{bento.url}/predict", json={"customer": example_record()})
    assert response.status_code == 200
    body = response.json()
    assert 0.0 <= body["churn_probability"] <= 1.0
    assert body["churn"] in ("Yes", "No")
    assert body["model_version"] == champion
    assert body["customerID"] == example_record()["customerID"]


def test_batch_scores_every_record_in_order(bento, champion: str) -> None:
    records = [{**example_record(), "customerID": f"c{i}", "tenure": i} for i in range(25)]
    response = httpx.post(f"{bento.url}/predict_batch", json={"customers": records})
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == champion
    assert [p["customerID"] for p in body["predictions"]] == [f"c{i}" for i in range(25)]
    # Longer tenure lowers churn risk in the synthetic population the model learned from.
    assert (
        body["predictions"][0]["churn_probability"] > body["predictions"][-1]["churn_probability"]
    )


def _broken(**changes: object) -> dict:
    record = example_record()
    for key, value in changes.items():
        if value is None:
            record.pop(key)
        else:
            record[key] = value
    return record


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/predict", {"customer": _broken(tenure=None)}, "tenure"),
        ("/predict", {"customer": _broken(MonthlyCharges="lots")}, "MonthlyCharges"),
        ("/predict", {"customer": _broken(Contract="Forever")}, "Contract"),
        ("/predict", {"customer": _broken(SeniorCitizen=3)}, "SeniorCitizen"),
        ("/predict", {"customer": {**example_record(), "shoe_size": 44}}, "shoe_size"),
        ("/predict_batch", {"customers": []}, "customers"),
        ("/predict_batch", {"customers": [example_record()] * 1001}, "customers"),
    ],
    ids=[
        "missing",
        "wrong-type",
        "unknown-category",
        "out-of-range",
        "unknown-field",
        "empty-batch",
        "oversized-batch",
    ],
)
def test_bad_input_is_4xx_naming_the_field(bento, path: str, payload: dict, field: str) -> None:
    response = httpx.post(f"{bento.url}{path}", json=payload)
    assert 400 <= response.status_code < 500
    locations = [detail["loc"] for detail in response.json()["detail"]]
    assert any(field in loc for loc in locations), locations


def test_non_json_body_is_rejected_with_4xx(bento) -> None:
    response = httpx.post(
        f"{bento.url}/predict",
        content=b"\x80\x04not json",
        headers={"content-type": "application/json"},
    )
    assert 400 <= response.status_code < 500


def test_docs_and_probes(bento) -> None:
    docs = httpx.get(f"{bento.url}/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    spec = httpx.get(f"{bento.url}/docs.json").json()
    assert {"/predict", "/predict_batch"} <= set(spec["paths"])
    assert httpx.get(f"{bento.url}/healthz").status_code == 200
    assert httpx.get(f"{bento.url}/readyz").status_code == 200
    assert httpx.get(f"{bento.url}/model").json()["ready"] is True


def test_docs_carry_the_contract_example_and_metrics_are_prometheus(bento) -> None:
    spec = httpx.get(f"{bento.url}/docs.json").json()
    assert json.dumps(example_record()["customerID"]) in json.dumps(spec["components"])
    httpx.post(f"{bento.url}/predict", json={"customer": example_record()}).raise_for_status()
    metrics = httpx.get(f"{bento.url}/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "# TYPE" in metrics.text
    assert 'endpoint="/predict"' in metrics.text


def test_swap_and_rollback_under_load_fail_no_request(
    bento, mlflow_uri: str, champion: str
) -> None:
    """A client keeps calling while @champion moves to a new version and back."""
    registry = MlflowModelRegistry(mlflow_uri, MODEL, "serving-tests")
    new_version = register_other_model(mlflow_uri)
    seen: Counter[str] = Counter()
    failures: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=bento.url, timeout=10) as http:
            while not stop.is_set():
                try:
                    response = http.post("/predict", json={"customer": example_record()})
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                else:
                    seen[response.json()["model_version"]] += 1

    def wait_for_version(version: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        before = seen[version]
        while seen[version] < before + 20:
            assert time.monotonic() < deadline, f"server never served version {version}"
            time.sleep(0.1)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        wait_for_version(champion)
        registry.promote(new_version, "swap test")
        wait_for_version(new_version)
        event = registry.rollback("rollback test")
        assert event.to_version == champion
        wait_for_version(champion)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert seen[new_version] > 0 and seen[champion] > 0


def test_not_ready_until_a_champion_exists(tmp_path: Path, mlflow_uri: str) -> None:
    server = start_bento(tmp_path, mlflow_uri, "churn-no-champion-yet")
    try:
        assert httpx.get(f"{server.url}/readyz").status_code == 503
        status = httpx.get(f"{server.url}/model")
        assert status.status_code == 503
        assert "no model version holds the alias" in status.json()["last_error"]
        response = httpx.post(f"{server.url}/predict", json={"customer": example_record()})
        assert response.status_code == 503
    finally:
        server.stop()


def test_pinned_model_uri_is_served_regardless_of_alias(
    tmp_path: Path, mlflow_uri: str, champion: str
) -> None:
    server = start_bento(
        tmp_path, mlflow_uri, MODEL, CHURNOPS_MODEL_URI=f"models:/{MODEL}/{champion}"
    )
    try:
        wait_ready(server)
        body = httpx.post(f"{server.url}/predict", json={"customer": example_record()}).json()
        assert body["model_version"] == champion
    finally:
        server.stop()
