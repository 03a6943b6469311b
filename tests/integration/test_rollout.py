"""Shadow and canary serving on a real Bento server following a real MLflow registry: the
champion answers and the challenger's scores land in the store (shadow), or a sticky hashed
share of customers is answered by the challenger (canary)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from churnops.contract import telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.synthetic import generate_customers
from churnops.model import recipes
from churnops.model.scoring import churn_probability, rows_to_frame
from churnops.monitoring import prediction_store
from registry.mlflow_registry import MlflowModelRegistry
from serving.rollout import answered_by_challenger
from tests.conftest import start_bento, wait_ready

pytestmark = pytest.mark.integration

TELCO = telco_contract()
MODEL = "churn-rollout"
SHARE = 0.3


def _register(registry: MlflowModelRegistry, seed: int, rows: int):
    """A logistic-regression version trained on its own sample (the two score differently)."""
    frame = clean_customers(generate_customers(rows, seed=seed), "synthetic", TELCO).frame
    model = recipes.train(frame, "logistic_regression", seed=0, contract=TELCO)
    run = registry.log_candidate(f"rollout-{seed}", model, {"seed": seed}, {}, contract=TELCO)
    return registry.register(run, {}), model


@pytest.fixture(scope="module")
def versions(mlflow_uri: str) -> dict:
    registry = MlflowModelRegistry(mlflow_uri, MODEL, "rollout-tests")
    champion, _ = _register(registry, seed=3, rows=3_000)
    registry.promote(champion, "test: the champion")
    challenger, challenger_model = _register(registry, seed=11, rows=800)
    registry.set_challenger(challenger)
    return {
        "champion": champion,
        "challenger": challenger,
        "challenger_model": challenger_model,
    }


def _serve(tmp_path: Path, mlflow_uri: str, **env: str):
    store = f"sqlite:///{tmp_path / 'store.db'}"
    server = start_bento(tmp_path, mlflow_uri, MODEL, CHURNOPS_PREDICTION_STORE_URL=store, **env)
    wait_ready(server)
    return server, store


def _wait_for_challenger(url: str, version: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        status = httpx.get(f"{url}/model").json()
        if status["rollout"]["challenger"]["model_version"] == version:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.5)


def _customers(count: int, offset: int = 0) -> list[dict]:
    base = TELCO.example_record()
    return [
        {**base, "customerID": f"cust-{offset + i}", "tenure": (offset + i) % 72}
        for i in range(count)
    ]


def test_shadow_answers_with_the_champion_and_stores_the_challengers_score(
    tmp_path: Path, mlflow_uri: str, versions: dict
) -> None:
    server, store_url = _serve(tmp_path, mlflow_uri, CHURNOPS_ROLLOUT="shadow")
    try:
        status = _wait_for_challenger(server.url, versions["challenger"])
        assert status["rollout"]["mode"] == "shadow"
        assert status["model_version"] == versions["champion"]
        single = httpx.post(f"{server.url}/predict", json={"customer": _customers(1)[0]})
        batch = httpx.post(
            f"{server.url}/predict_batch", json={"customers": _customers(20, offset=1)}
        )
        assert single.status_code == batch.status_code == 200
        answers = [single.json(), *batch.json()["predictions"]]
        assert {a["model_version"] for a in answers} == {versions["champion"]}
        wanted = {a["request_id"] for a in answers}
        engine = prediction_store.connect(store_url, TELCO)
        deadline = time.monotonic() + 30
        while True:
            shadow = prediction_store.read_shadow_predictions(engine, TELCO)
            if wanted <= set(shadow["request_id"]):
                break
            assert time.monotonic() < deadline, shadow
            time.sleep(0.5)
    finally:
        server.stop()
    shadow = shadow.set_index("request_id").loc[[a["request_id"] for a in answers]]
    assert set(shadow["model_version"]) == {versions["challenger"]}
    # The challenger's own scores of the records, not the champion's answers.
    records = _customers(21)
    rows = [[record[name] for name in TELCO.feature_names] for record in records]
    expected = churn_probability(versions["challenger_model"], rows_to_frame(rows, TELCO), TELCO)
    assert shadow["churn_probability"].to_numpy() == pytest.approx(expected, abs=1e-6)
    champion_scores = [a["churn_probability"] for a in answers]
    assert shadow["churn_probability"].tolist() != pytest.approx(champion_scores, abs=1e-6)
    # The answered predictions are logged under the champion, joinable by request id.
    logged = prediction_store.read_predictions(engine, contract=TELCO)
    logged = logged[logged["request_id"].isin(wanted)]
    assert len(logged) == len(wanted) and set(logged["model_version"]) == {versions["champion"]}


def test_canary_answers_a_sticky_hashed_share_with_the_challenger(
    tmp_path: Path, mlflow_uri: str, versions: dict
) -> None:
    server, _ = _serve(
        tmp_path, mlflow_uri, CHURNOPS_ROLLOUT="canary", CHURNOPS_CANARY_SHARE=str(SHARE)
    )
    try:
        _wait_for_challenger(server.url, versions["challenger"])
        customers = _customers(10_000)
        answered: dict[str, str] = {}
        for start in range(0, len(customers), 1_000):
            chunk = customers[start : start + 1_000]
            response = httpx.post(
                f"{server.url}/predict_batch", json={"customers": chunk}, timeout=60
            )
            assert response.status_code == 200, response.text
            for prediction in response.json()["predictions"]:
                answered[prediction["customerID"]] = prediction["model_version"]
        # Sticky: the same customers asked again, one by one, get the same version.
        again = {
            record["customerID"]: httpx.post(
                f"{server.url}/predict", json={"customer": record}
            ).json()["model_version"]
            for record in customers[:200]
        }
    finally:
        server.stop()
    share = sum(v == versions["challenger"] for v in answered.values()) / len(answered)
    assert abs(share - SHARE) <= 0.03, share
    assert set(answered.values()) == {versions["champion"], versions["challenger"]}
    for record in customers:
        row = [record[name] for name in TELCO.feature_names]
        by_challenger = answered_by_challenger(record["customerID"], row, SHARE)
        wanted = versions["challenger"] if by_challenger else versions["champion"]
        assert answered[record["customerID"]] == wanted
    assert again == {key: answered[key] for key in again}
