"""Two Bento replicas on one PostgreSQL prediction store (partitioned by day), as a cluster runs
them behind one Service: under concurrent load on both, every request answered 200 is stored
exactly once, with the replica's own request id, and the drift sensor's SQL counts see them all."""

from __future__ import annotations

import collections
import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy

from churnops.contract import telco_contract
from churnops.monitoring import partitions
from churnops.monitoring.binned import SCORE_COLUMN, counted_rows, numeric_bins
from churnops.monitoring.window_counts import count_window
from tests.conftest import BentoServer, start_bento, wait_ready
from tests.integration.conftest import SERVED_MODEL
from tests.postgres import Postgres, needs_postgres, postgres, wait_for

__all__ = ["postgres"]  # the fixture

pytestmark = [pytest.mark.integration, needs_postgres]

TELCO = telco_contract()
CLIENTS_PER_REPLICA = 12
LOAD_SECONDS = 8


class Load:
    """Client threads posting /predict to one replica; the request ids answered 200."""

    def __init__(self, server: BentoServer, name: str) -> None:
        self.server, self.name = server, name
        self.answered: list[str] = []
        self.failed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(n,), daemon=True)
            for n in range(CLIENTS_PER_REPLICA)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _client(self, n: int) -> None:
        with httpx.Client(timeout=30) as client:
            i = 0
            while not self._stop.is_set():
                record = {**TELCO.example_record(), "customerID": f"{self.name}-{n}-{i}"}
                i += 1
                response = client.post(f"{self.server.url}/predict", json={"customer": record})
                with self._lock:
                    if response.status_code == 200:
                        self.answered.append(response.json()["request_id"])
                    else:
                        self.failed += 1


def _pending(server: BentoServer) -> int:
    return httpx.get(f"{server.url}/model").json()["prediction_log"]["pending"]


def test_two_replicas_on_one_store_store_every_answered_request_exactly_once(
    tmp_path: Path, mlflow_uri: str, served_champion: str, postgres: Postgres, figures
) -> None:
    postgres.start()
    store = {"CHURNOPS_PREDICTION_STORE_URL": postgres.url}
    replicas = [
        start_bento(tmp_path / name, mlflow_uri, SERVED_MODEL, **store) for name in ("a", "b")
    ]
    loads = [Load(server, name) for server, name in zip(replicas, ("a", "b"), strict=True)]
    started = time.time()
    try:
        for server in replicas:
            wait_ready(server)
        for load in loads:
            load.start()
        time.sleep(LOAD_SECONDS)
        for load in loads:
            load.stop()
        for server in replicas:
            wait_for(lambda s=server: _pending(s) == 0, 60, "logged rows never shipped")
    finally:
        for server in replicas:
            server.stop()
    engine = sqlalchemy.create_engine(postgres.url)
    with engine.connect() as connection:
        stored = collections.Counter(
            connection.execute(sqlalchemy.text("SELECT request_id FROM predictions")).scalars()
        )
        assert partitions.table_kind(connection) == "p"
    fields = (numeric_bins(SCORE_COLUMN, [0.25, 0.5, 0.75]),)
    counted = counted_rows(count_window(engine, TELCO, fields, started - 60, time.time() + 60))
    engine.dispose()
    answered = [collections.Counter(load.answered) for load in loads]
    both = answered[0] + answered[1]
    figures(
        f"two Bento replicas, {CLIENTS_PER_REPLICA} clients each, {LOAD_SECONDS} s: "
        f"{sum(answered[0].values()):,} + {sum(answered[1].values()):,} answered 200, "
        f"{sum(stored.values()):,} rows stored, {sum(load.failed for load in loads)} failed"
    )
    assert all(sum(counter.values()) > 100 for counter in answered), "a replica got no load"
    assert not set(answered[0]) & set(answered[1])  # request ids are the replica's own
    assert max(both.values()) == 1
    missing = [request for request in both if stored[request] != 1]
    assert not missing, missing[:5]
    assert max(stored.values()) == 1
    assert sum(stored.values()) == len(both) == counted
    assert sum(load.failed for load in loads) == 0
