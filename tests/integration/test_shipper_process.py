"""The journal's shipper as the serving worker runs it: a process of its own, writing to a real
SQLite prediction store, restarted when it dies, stopped with the worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from churnops.contract import telco_contract
from churnops.contract.files import dump_contract
from churnops.monitoring import prediction_store
from serving.journal import PredictionJournal
from serving.prediction_log import PredictionLogger, ProcessShipping
from tests.conftest import free_port
from tests.postgres import wait_for

pytestmark = pytest.mark.integration

TELCO = telco_contract()


def _rows(prefix: str, count: int) -> list[tuple]:
    columns = prediction_store.prediction_columns(TELCO)
    record = {**TELCO.example_record(), "churn_probability": 0.5, "churn": "No"}
    return [
        tuple(
            {**record, "request_id": f"{prefix}{i}", "ts": time.time(), "model_version": "1"}[c]
            for c in columns
        )
        for i in range(count)
    ]


def test_a_shipper_process_writes_the_journal_to_the_store_and_is_restarted_when_killed(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    engine = prediction_store.connect(url, TELCO)
    journal = PredictionJournal(tmp_path / "journal")
    shipping = ProcessShipping(journal, url, dump_contract(TELCO), flush_seconds=0.05)
    logger = PredictionLogger(journal, shipping, flush_seconds=0.05)
    try:
        assert logger.stats()["journal"]["shipper"]["shipper_pid"] is None  # no rows yet
        logger.log(_rows("a", 500))
        assert logger.flush(timeout=60), logger.stats()
        shipper_pid = logger.stats()["journal"]["shipper"]["shipper_pid"]
        assert shipper_pid != os.getpid()
        command_line = Path(f"/proc/{shipper_pid}/cmdline").read_bytes()
        assert b"serving.shipper" in command_line and url.encode() not in command_line
        assert prediction_store.count_predictions(engine) == 500
        assert logger.stats()["written"] == 500 and logger.stats()["pending"] == 0

        os.kill(shipper_pid, signal.SIGTERM)  # a stop signals the group; the worker decides
        logger.log(_rows("t", 100))
        assert logger.flush(timeout=60), logger.stats()
        assert logger.stats()["journal"]["shipper"]["shipper_pid"] == shipper_pid
        assert logger.stats()["journal"]["shipper"]["restarts"] == 0

        os.kill(shipper_pid, signal.SIGKILL)
        logger.log(_rows("b", 300))
        wait_for(lambda: logger.stats()["journal"]["shipper"]["restarts"] == 1, 30, "no restart")
        assert logger.flush(timeout=60), logger.stats()
        assert prediction_store.count_predictions(engine) == 900
        assert logger.stats()["journal"]["shipper"]["shipper_pid"] != shipper_pid
    finally:
        logger.close(timeout=30)
    assert sorted(path.name for path in (tmp_path / "journal").iterdir()) == []


def test_rows_journaled_while_the_store_is_unreachable_wait_on_disk_for_the_next_shipper(
    tmp_path: Path,
) -> None:
    """A store nobody listens for: the worker keeps journaling (rows on disk); a later
    shipper with a working store adopts and writes them."""
    journal = PredictionJournal(tmp_path / "journal")
    broken = f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/postgres"
    logger = PredictionLogger(
        journal, ProcessShipping(journal, broken, dump_contract(TELCO), flush_seconds=0.05)
    )
    logger.log(_rows("c", 200))
    wait_for(lambda: logger.stats()["write_errors"] >= 1, 30, "the shipper never tried the store")
    assert logger.stats()["pending"] == 200 and "refused" in logger.stats()["last_error"]
    logger.close(timeout=30)
    assert sum(1 for _ in (tmp_path / "journal").glob("*.jsonl")) == 1

    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    engine = prediction_store.connect(url, TELCO)
    second = PredictionJournal(tmp_path / "journal")
    logger = PredictionLogger(
        second, ProcessShipping(second, url, dump_contract(TELCO), flush_seconds=0.05)
    )
    try:
        wait_for(lambda: prediction_store.count_predictions(engine) == 200, 60, "never adopted")
        wait_for(lambda: logger.stats()["journal"]["adopted_rows"] == 200, 10, "not reported")
    finally:
        logger.close(timeout=30)


WORKER = """
import sys, time
from pathlib import Path
from churnops.contract import telco_contract
from churnops.contract.files import dump_contract
from serving.journal import PredictionJournal
from serving.prediction_log import PredictionLogger, ProcessShipping
from tests.integration.test_shipper_process import _rows
journal = PredictionJournal(Path(sys.argv[1]))
logger = PredictionLogger(
    journal, ProcessShipping(journal, sys.argv[2], dump_contract(telco_contract()))
)
logger.log(_rows("k", 100))
assert logger.flush(timeout=60)
print(logger.stats()["journal"]["shipper"]["shipper_pid"], flush=True)
time.sleep(600)
"""


def test_a_shipper_whose_worker_is_killed_stops_by_itself(tmp_path: Path) -> None:
    """SIGKILL leaves the worker no chance to stop its shipper; the pipe the kernel closes
    does: no shipper outlives its worker."""
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    worker = subprocess.Popen(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", WORKER, str(tmp_path / "journal"), url],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        shipper_pid = int(worker.stdout.readline())
        assert Path(f"/proc/{shipper_pid}").exists()
        assert prediction_store.count_predictions(prediction_store.connect(url, TELCO)) == 100
    finally:
        worker.kill()
        worker.wait()
    wait_for(lambda: _gone(shipper_pid), 30, "the shipper outlived its worker")


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"  # a zombie has exited
    except FileNotFoundError:
        return True
