"""The batched prediction writer: nothing lost, store outages retried, losses counted."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest

from churnops.contract import telco_contract
from churnops.monitoring import prediction_store
from serving.journal import JournalFull, PredictionJournal, read_segment
from serving.prediction_log import PredictionLogger, ThreadShipping
from serving.shipper import SegmentShipper

pytestmark = pytest.mark.unit

TELCO = telco_contract()


def _logger(tmp_path: Path, write, batch_size: int = 1000, **kwargs) -> PredictionLogger:
    journal = PredictionJournal(tmp_path / "journal")
    shipper = SegmentShipper(journal.directory, journal.owner, write, batch_size)
    return PredictionLogger(journal, ThreadShipping(shipper), **kwargs)


def test_all_rows_are_written_in_batches_and_flushed_on_close(tmp_path: Path) -> None:
    batches: list[int] = []
    logger = _logger(tmp_path, lambda rows: batches.append(len(rows)), batch_size=100)
    for i in range(1000):
        logger.log([(f"r{i}",)])
    logger.close()
    assert sum(batches) == 1000 and max(batches) <= 100
    assert logger.stats()["written"] == 1000 and logger.stats()["pending"] == 0
    assert not list((tmp_path / "journal").iterdir())  # shipped segments and the lock are gone


def test_rows_logged_one_by_one_are_written_together(tmp_path: Path) -> None:
    """The shipper wakes on its interval, not per request, so single rows share a write."""
    calls: list[int] = []
    logger = _logger(tmp_path, lambda rows: calls.append(len(rows)), flush_seconds=1.0)
    for i in range(200):
        logger.log([(f"r{i}",)])
    logger.close()
    assert sum(calls) == 200 and len(calls) <= 2, calls


def test_a_logged_row_is_on_disk_before_log_returns(tmp_path: Path) -> None:
    logger = _logger(tmp_path, lambda rows: None, flush_seconds=60)
    logger.log([("r1", 0.5, None), ("r2", 0.25, "x")])
    segments = list((tmp_path / "journal").glob("*.part"))  # open, not yet sealed
    assert [read_segment(path) for path in segments] == [[["r1", 0.5, None], ["r2", 0.25, "x"]]]
    logger.close()


def test_store_outage_keeps_rows_on_disk_and_writes_them_later(tmp_path: Path) -> None:
    written: list = []
    store_up = threading.Event()

    def flaky(rows):
        if not store_up.is_set():
            raise ConnectionError("store down")
        written.extend(rows)

    logger = _logger(tmp_path, flaky, flush_seconds=0.01)
    logger.log([(f"r{i}",) for i in range(50)])
    while logger.stats()["write_errors"] == 0:
        threading.Event().wait(0.01)
    stats = logger.stats()
    assert stats["pending"] == 50 and stats["journal"]["bytes"] > 0
    assert "store down" in stats["last_error"]
    store_up.set()
    logger.close()
    assert len(written) == 50 and logger.stats()["pending"] == 0


def test_traffic_during_an_outage_does_not_hammer_the_store(tmp_path: Path) -> None:
    """Retries follow the backoff (0.5, 1 s ...), not the arrival of new rows."""
    logger = _logger(tmp_path, lambda rows: (_ for _ in ()).throw(ConnectionError("down")))
    stop = threading.Event()
    for i in range(300):  # about 1.2 s of steady traffic
        logger.log([(f"r{i}",)])
        stop.wait(0.004)
    stats = logger.stats()
    assert stats["pending"] == 300 and 1 <= stats["write_errors"] <= 3, stats


def test_a_stop_while_the_store_is_down_leaves_rows_for_the_next_worker(tmp_path: Path) -> None:
    def down(_rows):
        raise ConnectionError("store down")

    first = _logger(tmp_path, down, flush_seconds=0.01)
    first.log([("a",), ("b",)])
    first.close(timeout=5)
    written: list = []
    second = _logger(tmp_path, written.extend, flush_seconds=0.01)
    assert second.flush(timeout=5)
    assert second.stats()["journal"]["adopted_rows"] == 2
    second.close()
    assert sorted(written) == [["a"], ["b"]]


def test_a_killed_workers_segments_are_adopted_and_a_torn_line_skipped(tmp_path: Path) -> None:
    """A dead owner's lock is free: its segments, sealed or still open, go to the next shipper;
    the line a crash tore (no fdatasync, so no answer left) is skipped."""
    directory = tmp_path / "journal"
    dead = PredictionJournal(directory)
    dead.append([["a", 1.0]])
    dead.seal()
    dead.append([["b", 2.0]])
    open_path = next(directory.glob("*.part"))
    with open_path.open("ab") as file:
        file.write(b'[["c", 3')
    dead._lock_file.close()  # what the kernel does to a killed process's locks
    written: list = []
    adopter = PredictionJournal(directory)
    shipper = SegmentShipper(directory, adopter.owner, written.extend)
    assert shipper.ship()
    assert written == [["a", 1.0], ["b", 2.0]]
    assert shipper.status()["adopted_segments"] == 2 and shipper.status()["adopted_rows"] == 2
    assert shipper.status()["adopted_pending_rows"] == 0
    assert sorted(p.name for p in directory.iterdir()) == [f"{adopter.owner}.lock"]


def test_a_live_workers_segments_are_not_adopted(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    alive = PredictionJournal(directory)
    alive.append([["a"]])
    alive.seal()
    other = PredictionJournal(directory)
    written: list = []
    shipper = SegmentShipper(directory, other.owner, written.extend)
    assert shipper.ship() and written == [] and shipper.status()["adopted_segments"] == 0
    assert len(list(directory.glob("*.jsonl"))) == 1
    alive.close()


def test_two_shippers_never_adopt_the_same_dead_worker(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    dead = PredictionJournal(directory)
    dead.append([["a"]])
    dead._lock_file.close()
    first_rows: list = []
    second_rows: list = []
    first = SegmentShipper(directory, "first", lambda rows: None)
    first._adopt_orphans()  # holds the dead worker's lock from here on
    second = SegmentShipper(directory, "second", second_rows.extend)
    assert second.ship() and second_rows == [] and second.status()["adopted_segments"] == 0
    first._write = first_rows.extend
    assert first.ship() and first_rows == [["a"]]


def test_past_its_disk_limit_the_journal_refuses_rows(tmp_path: Path) -> None:
    journal = PredictionJournal(tmp_path / "journal", max_bytes=100)
    journal.append([["x" * 40]])
    with pytest.raises(JournalFull, match="CHURNOPS_JOURNAL_MAX_BYTES"):
        journal.append([["y" * 80]])
    assert journal.pending_rows == 1


def test_the_worker_forgets_segments_once_the_shipper_reports_them_shipped(tmp_path: Path) -> None:
    """The worker keeps sizes, not rows: its disk count falls as the shipper reports back."""
    journal = PredictionJournal(tmp_path / "journal")
    for batch in (["a", "b"], ["c"]):
        journal.append([[value] for value in batch])
        journal.seal()
    assert journal.pending_rows == 3 and journal.bytes > 0
    journal.shipped_through(1)
    assert journal.pending_rows == 1
    journal.shipped_through(2)
    assert journal.pending_rows == 0 and journal.bytes == 0


def test_the_store_keeps_a_replayed_row_once(tmp_path: Path) -> None:
    engine = prediction_store.connect(f"sqlite:///{tmp_path / 'p.db'}", TELCO)
    columns = prediction_store.prediction_columns(TELCO)
    record = {**TELCO.example_record(), "churn_probability": 0.5, "churn": "No"}
    row = tuple({**record, "request_id": "r1", "ts": 1.0, "model_version": "1"}[c] for c in columns)
    prediction_store.write_prediction_rows(engine, TELCO, [row])
    prediction_store.write_prediction_rows(engine, TELCO, [row, row])
    assert prediction_store.count_predictions(engine) == 1


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
    from serving.champion import LoadedModel
    from serving.runtime import Scored, log_rows
    from serving.service import CONTRACT, CustomerRecord

    assert CONTRACT == TELCO  # the shipped contract when CHURNOPS_CONTRACT is unset
    record = {**TELCO.example_record(), "TotalCharges": None, "tenure": 7}
    customer = CustomerRecord(**record)
    model = LoadedModel(version="3", uri="models:/x/3", model=None, score=None, threshold=0.3)
    (row,) = records_to_rows([customer], TELCO)
    scored = [Scored("abc", record["customerID"], row, 0.25, "No", model)]
    engine = prediction_store.connect("sqlite://", TELCO)
    rows = log_rows(scored)
    prediction_store.write_prediction_rows(engine, TELCO, rows)
    stored = prediction_store.read_predictions(engine, contract=TELCO).iloc[0]
    assert stored["request_id"] == "abc" and stored["model_version"] == "3"
    assert stored["customerID"] == record["customerID"]
    assert stored["tenure"] == 7 and pd.isna(stored["TotalCharges"])
    assert stored["Contract"] == record["Contract"]
    assert stored["PaymentMethod"] == record["PaymentMethod"]
    assert stored["churn_probability"] == 0.25 and stored["predicted_churn"] == "No"


def _logged(engine, count: int) -> None:
    rows = [
        {
            "request_id": f"r{i}",
            "ts": float(i),
            "model_version": "1",
            **TELCO.example_record(),
            "customerID": f"c{i % 2}",  # two customers, each scored twice
            "churn_probability": 0.5,
            "churn": "Yes",
        }
        for i in range(count)
    ]
    prediction_store.write_predictions(engine, TELCO, rows)


def test_labels_naming_no_logged_prediction_are_found(tmp_path) -> None:
    engine = prediction_store.connect(f"sqlite:///{tmp_path / 'p.db'}", TELCO)
    _logged(engine, 4)
    labels = [
        {"request_id": "r1", "Churn": "No"},
        {"request_id": "nope", "Churn": "No"},
        {"customerID": "c0", "Churn": "No"},
        {"customerID": "stranger", "Churn": "No"},
        {"request_id": "nope", "customerID": "c1", "Churn": "No"},
    ]
    assert prediction_store.unknown_feedback(engine, TELCO, labels) == [1, 3]


def test_a_label_sent_twice_counts_once_and_a_customer_trains_once(tmp_path) -> None:
    engine = prediction_store.connect(f"sqlite:///{tmp_path / 'p.db'}", TELCO)
    _logged(engine, 4)
    for label in ("Yes", "No"):  # sent twice: the latest counts
        prediction_store.write_feedback(engine, TELCO, [{"request_id": "r0", "Churn": label}])
    window = prediction_store.read_predictions(engine, contract=TELCO)
    assert len(window) == 4 and window["request_id"].is_unique
    assert window.set_index("request_id").loc["r0", "Churn"] == "No"
    prediction_store.write_feedback(engine, TELCO, [{"customerID": "c1", "Churn": "Yes"}])
    labelled = prediction_store.labelled_records(engine, TELCO)
    assert sorted(labelled["customerID"]) == ["c0", "c1"]  # c1 was scored twice, trains once
