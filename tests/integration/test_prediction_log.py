"""Every answered prediction reaches the prediction store, under load and across a graceful stop;
labels sent later are joined to their predictions."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from churnops import prediction_store
from churnops.contract import example_record
from tests.conftest import start_bento, wait_ready
from tests.integration.pipeline import materialize_pipeline

pytestmark = pytest.mark.integration

MODEL = "churn-prediction-log"
LOAD_REQUESTS = 20_000
CLIENTS = 16


@pytest.fixture(scope="module")
def champion(mlflow_uri: str) -> str:
    return materialize_pipeline(mlflow_uri, MODEL, synthetic_rows=5_000).output_for_node(
        "champion_version"
    )


def test_feedback_labels_join_predictions_by_request_and_customer_id(
    tmp_path: Path, mlflow_uri: str, champion: str
) -> None:
    server = start_bento(tmp_path, mlflow_uri, MODEL)
    try:
        wait_ready(server)
        records = [{**example_record(), "customerID": f"fb-{i}"} for i in range(3)]
        body = httpx.post(f"{server.url}/predict_batch", json={"customers": records}).json()
        ids = [p["request_id"] for p in body["predictions"]]
        labels = [
            {"request_id": ids[0], "Churn": "Yes"},
            {"customerID": "fb-1", "Churn": "No"},
        ]
        receipt = httpx.post(f"{server.url}/feedback", json={"labels": labels})
        assert receipt.status_code == 200 and receipt.json() == {"stored": 2}
        bad = httpx.post(f"{server.url}/feedback", json={"labels": [{"Churn": "Yes"}]})
        assert bad.status_code == 400 and "request_id or customerID" in bad.text
    finally:
        server.stop()
    engine = prediction_store.connect(f"sqlite:///{tmp_path / 'state' / 'predictions.db'}")
    logged = prediction_store.read_predictions(engine).set_index("customerID")
    assert logged.loc["fb-0", "Churn"] == "Yes"
    assert logged.loc["fb-1", "Churn"] == "No"
    assert logged["Churn"].isna()["fb-2"]
    assert set(logged["model_version"]) == {champion}


class Load:
    """CLIENTS threads sharing one request budget, counting 200 answers."""

    def __init__(self, url: str, requests: int) -> None:
        self.url = url
        self.budget = iter(range(requests))
        self.answered = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client) for _ in range(CLIENTS)]

    def _client(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            for _ in self.budget:
                try:
                    response = http.post("/predict", json={"customer": example_record()})
                except httpx.HTTPError:
                    return  # the server has gone away (graceful stop)
                if response.status_code == 200:
                    with self.lock:
                        self.answered += 1

    def start(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def join(self) -> int:
        for thread in self.threads:
            thread.join()
        return self.answered


def test_no_prediction_lost_under_load_and_graceful_stop(
    tmp_path: Path, mlflow_uri: str, champion: str
) -> None:
    server = start_bento(tmp_path, mlflow_uri, MODEL)
    wait_ready(server)
    started = time.monotonic()
    answered = Load(server.url, LOAD_REQUESTS).start().join()
    rate = LOAD_REQUESTS / (time.monotonic() - started)
    burst = Load(server.url, 100_000).start()
    time.sleep(2)
    server.stop()  # SIGTERM while the burst is in flight
    answered += burst.join()
    engine = prediction_store.connect(f"sqlite:///{tmp_path / 'state' / 'predictions.db'}")
    logged = prediction_store.count_predictions(engine)
    print(f"\nload: {answered} answered ({rate:.0f} req/s), {logged} rows logged")
    assert answered >= LOAD_REQUESTS + 1
    assert logged == answered
