"""The batched prediction writer: nothing lost, store outages retried, losses counted."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from churnops.contract import telco_contract
from churnops.monitoring import prediction_store
from serving.prediction_log import PredictionLogger

pytestmark = pytest.mark.unit

TELCO = telco_contract()


def test_all_rows_are_written_in_batches_and_flushed_on_close() -> None:
    batches: list[int] = []
    logger = PredictionLogger(lambda rows: batches.append(len(rows)), batch_size=100)
    for i in range(1000):
        logger.log([{"i": i}])
    logger.close()
    assert sum(batches) == 1000
    assert logger.stats()["written"] == 1000 and logger.stats()["pending"] == 0


def test_rows_logged_one_by_one_are_written_together() -> None:
    """The writer wakes on its interval, not per request, so single rows share a write."""
    calls: list[int] = []
    logger = PredictionLogger(lambda rows: calls.append(len(rows)), flush_seconds=1.0)
    for i in range(200):
        logger.log([{"i": i}])
    logger.close()
    assert sum(calls) == 200 and len(calls) <= 2, calls


def test_store_outage_keeps_rows_and_writes_them_later() -> None:
    written: list[dict] = []
    store_up = threading.Event()

    def flaky(rows):
        if not store_up.is_set():
            raise ConnectionError("store down")
        written.extend(rows)

    logger = PredictionLogger(flaky, flush_seconds=0.01)
    logger.log([{"i": i} for i in range(50)])
    while logger.stats()["write_errors"] == 0:
        threading.Event().wait(0.01)
    assert logger.stats()["pending"] == 50
    assert "store down" in logger.stats()["last_error"]
    store_up.set()
    logger.close()
    assert len(written) == 50 and logger.stats()["dropped"] == 0


def test_traffic_during_an_outage_does_not_hammer_the_store() -> None:
    """Retries follow the backoff (0.5, 1 s ...), not the arrival of new rows."""
    logger = PredictionLogger(lambda rows: (_ for _ in ()).throw(ConnectionError("down")))
    stop = threading.Event()
    for i in range(300):  # about 1.2 s of steady traffic
        logger.log([{"i": i}])
        stop.wait(0.004)
    stats = logger.stats()
    assert stats["pending"] == 300 and 1 <= stats["write_errors"] <= 3, stats


def test_overflow_beyond_the_buffer_is_dropped_and_counted() -> None:
    def down(_rows):
        raise ConnectionError("store down")

    logger = PredictionLogger(down, flush_seconds=0.01, max_buffered=10)
    logger.log([{"i": i} for i in range(25)])
    while logger.stats()["dropped"] < 15:
        threading.Event().wait(0.01)
    assert logger.stats()["dropped"] == 15


def test_prediction_store_round_trip_with_labels(tmp_path) -> None:
    engine = prediction_store.connect(f"sqlite:///{tmp_path / 'p.db'}", TELCO)
    rows = [
        {
            "request_id": f"r{i}",
            "ts": float(i),
            "model_version": "1",
            **TELCO.example_record(),
            "customerID": f"c{i}",
            "churn_probability": 0.5,
            "churn": "Yes",
        }
        for i in range(4)
    ]
    prediction_store.write_predictions(engine, TELCO, rows)
    prediction_store.write_feedback(
        engine, TELCO, [{"request_id": "r0", "Churn": "No"}, {"customerID": "c2", "Churn": "Yes"}]
    )
    assert prediction_store.count_predictions(engine) == 4
    window = prediction_store.read_predictions(engine, since_ts=0.0, contract=TELCO)
    assert list(window["request_id"]) == ["r1", "r2", "r3"]
    assert list(window["Churn"].fillna("-")) == ["-", "Yes", "-"]
    labelled = prediction_store.labelled_records(engine, TELCO)
    assert list(labelled["customerID"]) == ["c0", "c2"]
    assert list(labelled["Churn"]) == ["No", "Yes"]


def test_served_log_rows_land_in_the_right_columns() -> None:
    """The service logs plain tuples; their order must be the store's column order."""
    from churnops.records import records_to_rows
    from serving.service import CONTRACT, ChurnPrediction, CustomerRecord, _log_rows

    assert CONTRACT == TELCO  # the shipped contract when CHURNOPS_CONTRACT is unset
    record = {**TELCO.example_record(), "TotalCharges": None, "tenure": 7}
    customer = CustomerRecord(**record)
    prediction = ChurnPrediction(
        request_id="abc",
        customerID=record["customerID"],
        churn_probability=0.25,
        churn="No",
        model_version="3",
    )
    engine = prediction_store.connect("sqlite://", TELCO)
    rows = _log_rows(records_to_rows([customer], TELCO), [prediction])
    prediction_store.write_prediction_rows(engine, TELCO, rows)
    stored = prediction_store.read_predictions(engine, contract=TELCO).iloc[0]
    assert stored["request_id"] == "abc" and stored["model_version"] == "3"
    assert stored["customerID"] == record["customerID"]
    assert stored["tenure"] == 7 and pd.isna(stored["TotalCharges"])
    assert stored["Contract"] == record["Contract"]
    assert stored["PaymentMethod"] == record["PaymentMethod"]
    assert stored["churn_probability"] == 0.25 and stored["predicted_churn"] == "No"
