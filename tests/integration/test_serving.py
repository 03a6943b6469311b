"""A real Bento server subprocess, called over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from churnops.contract import derive_row_id, load_contract, telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.synthetic import generate_customers
from churnops.model import recipes
from registry.mlflow_registry import MlflowModelRegistry
from tests.conftest import start_bento, wait_ready
from tests.integration.pipeline import materialize_pipeline

pytestmark = pytest.mark.integration

TELCO = telco_contract()
example_record = TELCO.example_record

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
    frame = clean_customers(generate_customers(5_000, seed=3), "synthetic", TELCO).frame
    model = recipes.train(frame, "logistic_regression", seed=0, contract=TELCO)
    registry = MlflowModelRegistry(mlflow_uri, MODEL, "serving-tests")
    run = registry.log_candidate("lr", model, {"recipe": "lr"}, {}, contract=TELCO)
    return registry.register(run, {})


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


def test_numeric_ids_and_whole_number_floats_are_accepted(bento, champion: str) -> None:
    record = {**example_record(), "customerID": 15634602, "tenure": 12.0}
    response = httpx.post(f"{bento.url}/predict", json={"customer": record})
    assert response.status_code == 200, response.text
    assert response.json()["customerID"] == "15634602"
    fraction = httpx.post(f"{bento.url}/predict", json={"customer": {**record, "tenure": 12.5}})
    assert fraction.status_code == 400
    assert [detail["loc"][-1] for detail in fraction.json()["detail"]] == ["tenure"]


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


@pytest.mark.parametrize("form", ["alias", "run"])
def test_pinned_alias_and_run_uris_are_checked_by_their_contract_tags(
    tmp_path: Path, mlflow_uri: str, champion: str, form: str
) -> None:
    registry = MlflowModelRegistry(mlflow_uri, MODEL, "serving-tests")
    run_id = registry.version(champion).run_id
    uri = f"models:/{MODEL}@champion" if form == "alias" else f"runs:/{run_id}/model"
    server = start_bento(tmp_path, mlflow_uri, MODEL, CHURNOPS_MODEL_URI=uri)
    try:
        wait_ready(server)
        status = httpx.get(f"{server.url}/model").json()
        assert status["refused_version"] is None
        body = httpx.post(f"{server.url}/predict", json={"customer": example_record()}).json()
        assert body["model_version"] == (champion if form == "alias" else uri)
    finally:
        server.stop()


GYM_MODEL = "gym-serving"
GYM_CONTRACT = """\
version: 1
dataset: gym-members
target: {name: left, positive: [1], negative: [0]}
features:
  - {name: age, kind: integer, minimum: 16, maximum: 99, example: 41}
  - {name: has pass, kind: boolean, example: true}
  - {name: club, kind: categorical, example: club-3}
  - {name: plan, kind: categorical, categories: [basic, plus]}
  - {name: visits, kind: numeric, minimum: 0, nullable: true}
"""


def _gym_members(rows: int, seed: int) -> pd.DataFrame:
    """A file of the gym contract: leavers are young, pass-less and rarely visit."""
    rng = np.random.default_rng(seed)
    age = rng.integers(16, 99, rows)
    has_pass = rng.random(rows) < 0.5
    visits = rng.uniform(0, 30, rows)
    risk = 1.5 - age / 40 - has_pass * 1.0 - visits / 10
    left = (rng.random(rows) < 1 / (1 + np.exp(-risk))).astype(int)
    return pd.DataFrame(
        {
            "age": age,
            "has pass": np.where(has_pass, "yes", "no"),
            "club": [f"club-{i}" for i in rng.integers(0, 30, rows)],
            "plan": rng.choice(["basic", "plus"], rows),
            "visits": np.where(rng.random(rows) < 0.1, np.nan, visits),
            "left": left,
        }
    )


@pytest.fixture(scope="module")
def gym_bento(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str):
    """A server configured with a contract it has never seen: no id column, a boolean, an open
    categorical, a 0/1 target; its champion trained on that contract."""
    folder = tmp_path_factory.mktemp("gym")
    path = folder / "gym.yaml"
    path.write_text(GYM_CONTRACT)
    contract = load_contract(path)
    frame = clean_customers(_gym_members(3_000, seed=1), "gym.csv", contract).frame
    model = recipes.train(frame, "hist_gradient_boosting", seed=0, contract=contract)
    registry = MlflowModelRegistry(mlflow_uri, GYM_MODEL, "serving-tests")
    version = registry.register(registry.log_candidate("gym", model, {}, {}, contract=contract), {})
    registry.promote(version, "gym serving test")
    server = start_bento(folder, mlflow_uri, GYM_MODEL, CHURNOPS_CONTRACT=str(path))
    wait_ready(server)
    yield server, contract, version
    server.stop()


def test_a_non_telco_contract_shapes_the_request_and_the_answer(gym_bento) -> None:
    server, contract, version = gym_bento
    record = {"age": 23, "has pass": False, "club": "a club never seen", "plan": "plus"}
    first = httpx.post(f"{server.url}/predict", json={"customer": record})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["model_version"] == version and body["churn"] in ("1", "0")
    row = [23, False, "a club never seen", "plus", None]
    assert body["row_id"] == derive_row_id(row)  # the id cleaning derives for this row
    again = httpx.post(f"{server.url}/predict", json={"customer": {**record, "visits": None}})
    assert again.json()["row_id"] == body["row_id"]
    older = {**record, "age": 80, "has pass": True, "visits": 25.0}
    batch = httpx.post(f"{server.url}/predict_batch", json={"customers": [record, older]})
    scores = [p["churn_probability"] for p in batch.json()["predictions"]]
    assert scores[0] > scores[1]  # the model learned the gym's signal

    status = httpx.get(f"{server.url}/model").json()
    assert status["contract"] == {"dataset": "gym-members", "fingerprint": contract.fingerprint}
    spec = json.dumps(httpx.get(f"{server.url}/docs.json").json()["components"])
    assert '"has pass"' in spec and "customerID" not in spec and "Telco" not in spec

    second = batch.json()["predictions"][1]["request_id"]
    labels = {
        "labels": [{"row_id": body["row_id"], "left": 1}, {"request_id": second, "left": "0"}]
    }
    assert httpx.post(f"{server.url}/feedback", json=labels).json() == {"stored": 2}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"has pass": "yes"}, "has pass"),
        ({"plan": "gold"}, "plan"),
        ({"age": 5}, "age"),
        ({"club": "x" * 201}, "club"),
        ({"customerID": "c1"}, "customerID"),
    ],
    ids=["boolean-as-text", "closed-category", "out-of-range", "long-category", "telco-field"],
)
def test_a_wrong_field_of_the_non_telco_contract_is_400_naming_it(
    gym_bento, change: dict, field: str
) -> None:
    server, _, _ = gym_bento
    record = {"age": 23, "has pass": False, "club": "club-1", "plan": "plus", **change}
    response = httpx.post(f"{server.url}/predict", json={"customer": record})
    assert response.status_code == 400
    locations = [detail["loc"] for detail in response.json()["detail"]]
    assert any(field in loc for loc in locations), locations


def test_non_telco_feedback_with_a_wrong_label_is_400_naming_the_target(gym_bento) -> None:
    server, _, _ = gym_bento
    response = httpx.post(
        f"{server.url}/feedback", json={"labels": [{"request_id": "x", "left": "maybe"}]}
    )
    assert response.status_code == 400
    assert any("left" in detail["loc"] for detail in response.json()["detail"])


def test_the_lean_route_answers_as_the_bento_api_does(bento, champion: str) -> None:
    """Plain requests take the lean route (serving/fast_path.py); `explain: false` sends the same
    record through BentoML's API. Both answer the same fields and values but the request id."""
    records = [{**example_record(), "customerID": f"l{i}", "tenure": i} for i in range(3)]
    for path, body in [
        ("/predict", {"customer": records[0]}),
        ("/predict_batch", {"customers": records}),
    ]:
        lean = httpx.post(f"{bento.url}{path}", json=body)
        api = httpx.post(f"{bento.url}{path}", json={**body, "explain": False})
        assert lean.status_code == api.status_code == 200
        assert lean.headers.get("x-churnops-route") == "lean"
        assert "x-churnops-route" not in api.headers
        lean_body, api_body = lean.json(), api.json()
        answers = lean_body.get("predictions", [lean_body]) + api_body.get(
            "predictions", [api_body]
        )
        assert len({a.pop("request_id") for a in answers}) == len(answers)
        assert lean_body == api_body
    refused = httpx.post(f"{bento.url}/predict", json={"customer": {**records[0], "tenure": -1}})
    assert refused.status_code == 400 and "tenure" in refused.text
