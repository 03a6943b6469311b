"""Every answered prediction reaches the prediction store, under load and across a graceful stop;
labels sent later are joined to their predictions."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from statistics import median

import httpx
import pytest

from benchmarks.common import RssTimeline
from churnops.contract import telco_contract
from churnops.monitoring import prediction_store
from tests.conftest import start_bento, wait_ready
from tests.integration.conftest import SERVED_MODEL

pytestmark = pytest.mark.integration

TELCO = telco_contract()
example_record = TELCO.example_record

MODEL = SERVED_MODEL
# Issue 3 asks for at least 20k requests; at ~50 req/s on 2 cores that is a soak of ~7 minutes.
SOAK_REQUESTS = 20_000
CLIENTS = 32


def test_feedback_labels_join_predictions_by_request_and_customer_id(
    tmp_path: Path, mlflow_uri: str, served_champion: str
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
        maybe = {"labels": [{"request_id": ids[2], "Churn": "maybe"}]}
        wrong = httpx.post(f"{server.url}/feedback", json=maybe)
        assert wrong.status_code == 400 and "Churn" in wrong.json()["detail"][0]["loc"]
        # Labels for predictions never made are refused, naming each; nothing of them is kept.
        unknown = {
            "labels": [
                {"request_id": ids[2], "Churn": "Yes"},
                {"request_id": "never-made", "Churn": "Yes"},
                {"customerID": "nobody", "Churn": "No"},
            ]
        }
        refused = httpx.post(f"{server.url}/feedback", json=unknown)
        assert refused.status_code == 422, refused.text
        assert [d["loc"] for d in refused.json()["detail"]] == [
            ["labels", 1, "request_id"],
            ["labels", 2, "customerID"],
        ]
        # A label sent twice counts once: the prediction's window row is not doubled.
        again = {"labels": [{"request_id": ids[0], "Churn": "Yes"}]}
        assert httpx.post(f"{server.url}/feedback", json=again).status_code == 200
    finally:
        server.stop()
    engine = prediction_store.connect(f"sqlite:///{tmp_path / 'state' / 'predictions.db'}")
    logged = prediction_store.read_predictions(engine, contract=TELCO).set_index("customerID")
    assert logged.loc["fb-0", "Churn"] == "Yes"
    assert logged.loc["fb-1", "Churn"] == "No"
    assert logged["Churn"].isna()["fb-2"]  # the refused request stored nothing
    assert logged.index.is_unique  # fb-0's two labels joined as one
    assert set(logged["model_version"]) == {served_champion}


class Load:
    """CLIENTS threads sharing one request budget, counting 200 answers and errors."""

    def __init__(self, url: str, requests: int) -> None:
        self.url = url
        self.budget = iter(range(requests))
        self.answered = 0
        self.errors = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client) for _ in range(CLIENTS)]

    def _client(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            for _ in self.budget:
                try:
                    response = http.post("/predict", json={"customer": example_record()})
                except httpx.HTTPError:
                    return  # the server has gone away (graceful stop)
                with self.lock:
                    if response.status_code == 200:
                        self.answered += 1
                    else:
                        self.errors += 1

    def start(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def join(self) -> int:
        for thread in self.threads:
            thread.join()
        return self.answered


def test_soak_bounded_memory_no_errors_and_no_prediction_lost(
    tmp_path: Path,
    mlflow_uri: str,
    served_champion: str,
    figures,
) -> None:
    """20k requests from 32 concurrent clients, then SIGTERM during a burst:
    zero errors, no memory growth trend, and exactly one logged row per answered request."""
    server = start_bento(tmp_path, mlflow_uri, MODEL)
    wait_ready(server)
    started = time.monotonic()
    # Sampled twice a second: the soak takes well under a minute since requests share model calls.
    with RssTimeline(server.process.proc.pid, interval=0.5) as timeline:
        soak = Load(server.url, SOAK_REQUESTS).start()
        answered = soak.join()
    samples = [rss for _, rss in timeline.samples]
    seconds = time.monotonic() - started
    burst = Load(server.url, 100_000).start()
    time.sleep(2)
    server.stop()  # SIGTERM while the burst is in flight
    answered += burst.join()
    engine = prediction_store.connect(f"sqlite:///{tmp_path / 'state' / 'predictions.db'}")
    logged = prediction_store.count_predictions(engine)
    steady = samples[len(samples) // 5 :]  # after warm-up
    quarter = max(len(steady) // 4, 1)
    first, last = median(steady[:quarter]), median(steady[-quarter:])
    mib = 2**20
    figures(
        f"\nsoak: {soak.answered} answered in {seconds:.0f}s ({soak.answered / seconds:.0f} req/s,"
        f" {CLIENTS} clients), {soak.errors + burst.errors} errors; {answered} answered in all,"
        f" {logged} rows logged; RSS {samples[0] / mib:.0f} -> {samples[-1] / mib:.0f} MiB"
        f" (steady first/last quartile medians {first / mib:.0f}/{last / mib:.0f} MiB,"
        f" {len(samples)} samples)"
    )
    assert soak.errors == 0 and burst.errors == 0
    assert soak.answered == SOAK_REQUESTS
    assert len(steady) >= 20
    assert last <= first * 1.25 + 32 * mib, "memory grows under steady load"
    assert logged == answered
