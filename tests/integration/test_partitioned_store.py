"""The prediction log on a real PostgreSQL server: day partitions created ahead, rows routed
to their day (or the DEFAULT partition and moved later), retention, the migration of a store
made before partitioning, drift counts by SQL equal to the same counts made in Python, and a
day's export by COPY equal to the row-by-row one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy
from sqlalchemy import func, literal_column, select, text

from churnops.contract import Contract, Feature, Target, telco_contract
from churnops.data.synthetic import DriftSpec
from churnops.monitoring import partitions, prediction_store
from churnops.monitoring.binned import binned_reference, count_frame, quality_from_bins
from churnops.monitoring.copy_stream import copy_batches
from churnops.monitoring.drift import SCORE_COLUMN, live_quality
from churnops.monitoring.export import day_location, export_day, export_schema
from churnops.monitoring.prediction_store import store_schema
from churnops.monitoring.window_counts import count_window, quality_bins
from tests.postgres import Postgres, needs_postgres
from tests.unit.core.test_binned_drift import _customers, _logged
from tests.unit.core.test_live_pairs import check_pairs

pytestmark = [pytest.mark.integration, needs_postgres]

TELCO = telco_contract()
TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture(scope="module")
def server() -> Iterator[Postgres]:
    postgres = Postgres()
    postgres.start()
    yield postgres
    postgres.remove()


@pytest.fixture
def engine(server: Postgres) -> Iterator[sqlalchemy.Engine]:
    """A fresh database on the module's server per test."""
    name = f"t{np.random.default_rng().integers(1 << 40)}"
    admin = sqlalchemy.create_engine(server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    url = server.url.rsplit("/", 1)[0] + f"/{name}"
    store = prediction_store.connect(url)
    yield store
    store.dispose()
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def _rows_at(times: list[float], prefix: str = "r") -> list[dict[str, object]]:
    customers = _customers(len(times), 4)
    rows = _logged(customers, 0)
    for i, (row, ts) in enumerate(zip(rows, times, strict=True)):
        row.update(request_id=f"{prefix}{i}", ts=ts, customerID=f"{prefix}c{i}")
    return rows


def _where(engine: sqlalchemy.Engine) -> dict[str, int]:
    """Rows per partition (tableoid), by partition name."""
    query = text("SELECT tableoid::regclass::text, count(*) FROM predictions GROUP BY 1")
    with engine.connect() as connection:
        return dict(connection.execute(query).all())


def _days(engine: sqlalchemy.Engine) -> set[dt.date]:
    with engine.connect() as connection:
        return partitions.existing_days(connection)


def test_a_new_store_is_partitioned_by_day_ahead_and_routes_rows(engine) -> None:
    prediction_store.ensure_tables(engine, TELCO)
    with engine.connect() as connection:
        assert partitions.table_kind(connection) == "p"
    ahead = {TODAY + dt.timedelta(days=n) for n in range(-1, partitions.PARTITIONS_AHEAD + 1)}
    assert ahead <= _days(engine)
    now = partitions.day_start(TODAY) + 3600
    far = partitions.day_start(TODAY + dt.timedelta(days=30)) + 5
    rows = _rows_at([now, now + 1, far])
    prediction_store.write_predictions(engine, TELCO, rows)
    prediction_store.write_predictions(engine, TELCO, rows[:2])  # shipped twice: kept once
    assert _where(engine) == {
        partitions.partition_name(TODAY): 2,
        partitions.DEFAULT_PARTITION: 1,  # no partition that far ahead: nothing refused
    }
    late = TODAY + dt.timedelta(days=30)
    with engine.begin() as connection:
        assert partitions.ensure_days(connection, late, late) == [late]
    assert _where(engine) == {
        partitions.partition_name(TODAY): 2,
        partitions.partition_name(late): 1,
    }
    assert len(prediction_store.read_predictions(engine, contract=TELCO)) == 3


def test_retention_drops_whole_days_and_old_default_rows(engine) -> None:
    prediction_store.ensure_tables(engine, TELCO)
    old = partitions.day_start(TODAY - dt.timedelta(days=40)) + 10
    recent = partitions.day_start(TODAY - dt.timedelta(days=1)) + 10
    with engine.begin() as connection:
        partitions.ensure_days(connection, TODAY - dt.timedelta(days=40), TODAY)
    ancient = partitions.day_start(TODAY - dt.timedelta(days=400)) + 1  # DEFAULT partition
    prediction_store.write_predictions(engine, TELCO, _rows_at([old, recent, ancient]))
    schema = store_schema(TELCO)
    done = partitions.maintain(engine, schema.predictions, TODAY, retention_days=30)
    assert done is not None and done.migrated_rows is None
    assert min(_days(engine)) == TODAY - dt.timedelta(days=30)
    assert TODAY - dt.timedelta(days=40) in done.dropped
    assert done.default_rows_dropped == 1
    kept = prediction_store.read_predictions(engine, contract=TELCO)
    assert kept["ts"].tolist() == [recent]
    keep_all = partitions.maintain(engine, schema.predictions, TODAY, retention_days=0)
    assert keep_all.dropped == [] and min(_days(engine)) == TODAY - dt.timedelta(days=30)


def test_a_store_made_before_partitioning_keeps_working_then_migrates_without_loss(
    engine,
) -> None:
    schema = store_schema(TELCO)
    schema.metadata.create_all(engine)  # what the store looked like before: one plain table
    start = partitions.day_start(TODAY - dt.timedelta(days=3))
    times = [start + i * 3600.0 for i in range(100)]
    prediction_store.write_predictions(engine, TELCO, _rows_at(times[:60]))
    # The new code on the old table: writes (idempotent), reads and labels still work.
    prediction_store.write_predictions(engine, TELCO, _rows_at(times))
    prediction_store.write_feedback(engine, TELCO, [{"request_id": "r5", "Churn": "Yes"}])
    with engine.connect() as connection:
        assert partitions.table_kind(connection) == "r"
    before = prediction_store.read_predictions(engine, contract=TELCO)
    assert len(before) == 100

    done = partitions.maintain(engine, schema.predictions, TODAY, retention_days=0)
    assert done.migrated_rows == 100
    with engine.connect() as connection:
        assert partitions.table_kind(connection) == "p"
        assert partitions.table_kind(connection, partitions.UNPARTITIONED) is None
    after = prediction_store.read_predictions(engine, contract=TELCO)
    assert after.equals(before)
    assert sum(_where(engine).values()) == 100
    assert partitions.DEFAULT_PARTITION not in _where(engine)
    prediction_store.write_predictions(engine, TELCO, _rows_at(times))  # still once each
    assert len(prediction_store.read_predictions(engine, contract=TELCO)) == 100


def test_postgres_counts_a_window_into_the_same_bins_as_python(engine) -> None:
    reference = binned_reference(_customers(3000, 1), TELCO)
    window = _customers(1500, 5, DriftSpec(monthly_charges_shift=10))
    start = partitions.day_start(TODAY) + 1.0
    rows = _logged(window, 0)
    for i, row in enumerate(rows):
        row["ts"] = start + i
    prediction_store.write_predictions(engine, TELCO, rows)
    counted = count_window(engine, TELCO, reference.fields, start + 99, start + 1099)
    assert counted == count_frame(reference.fields, window.iloc[100:1100])
    labels = [{"request_id": f"r{i}", "Churn": "Yes" if i % 3 else "No"} for i in range(400)]
    labels += [{"customerID": f"c{i}", "Churn": "No"} for i in range(400, 600)]
    prediction_store.write_feedback(engine, TELCO, labels)
    binned = quality_from_bins(quality_bins(engine, TELCO, None, None), 50, TELCO)
    exact = live_quality(prediction_store.read_predictions(engine, contract=TELCO), 50, TELCO)
    assert binned["1"]["labels"] == exact["1"]["labels"] == 600
    assert binned["1"]["brier"] == pytest.approx(exact["1"]["brier"])
    assert binned["1"]["roc_auc"] == pytest.approx(exact["1"]["roc_auc"], abs=5e-3)
    assert SCORE_COLUMN in counted


# Values PostgreSQL's CSV must carry through: delimiters, quotes, newlines, an empty string
# beside a missing one, booleans, 64-bit integers, floats at full precision.
EDGE = Contract(
    dataset="edge",
    id_column="account",
    target=Target(name="left", positive=("yes",), negative=("no",)),
    features=(
        Feature(name="plan", kind="categorical"),
        Feature(name="has app", kind="boolean", nullable=True),
        Feature(name="seats", kind="integer", nullable=True),
        Feature(name="spend", kind="numeric", nullable=True),
    ),
)
ACCOUNTS = ["a,b", 'say "hi"', "two\nlines", "", None, "plain", "d\\e", "x\r\ny"]


def _edge_rows(day: dt.date) -> list[dict[str, object]]:
    start = partitions.day_start(day)
    rows = []
    for i, account in enumerate(ACCOUNTS):
        rows.append(
            {
                "request_id": f"e{i}",
                "ts": start + i / 3,
                "model_version": "7",
                "account": account,
                "plan": ["basic", "pro, annual", "", '"q"'][i % 4],
                "has app": [True, False, None][i % 3],
                "seats": [2**40, None, -3][i % 3],
                "spend": [0.1 + 0.2, None, 1e-300, 123456.789][i % 4],
                SCORE_COLUMN: i / 7,
                "churn": "yes" if i % 2 else "no",
            }
        )
    rows.append({**rows[0], "request_id": "late", "ts": start + partitions.DAY_SECONDS})
    return rows


def test_postgres_exports_a_day_as_sqlite_does(engine, tmp_path) -> None:
    """The COPY path writes the same file as the row path: same values, nulls and labels."""
    day = TODAY - dt.timedelta(days=1)
    sqlite = prediction_store.connect(f"sqlite:///{tmp_path / 'p.db'}", EDGE)
    labels = [{"request_id": "e1", "left": "yes"}, {"account": "a,b", "left": "no"}]
    for store in (engine, sqlite):
        prediction_store.write_predictions(store, EDGE, _edge_rows(day))
        prediction_store.write_feedback(store, EDGE, labels)
    assert export_day(engine, EDGE, day, str(tmp_path / "pg")) == len(ACCOUNTS)
    assert export_day(sqlite, EDGE, day, str(tmp_path / "sqlite")) == len(ACCOUNTS)
    exported = pq.read_table(day_location(str(tmp_path / "pg"), day))
    expected = pq.read_table(day_location(str(tmp_path / "sqlite"), day))
    assert exported.schema == expected.schema == export_schema(EDGE)
    assert exported.sort_by("request_id").equals(expected.sort_by("request_id"))
    frame = exported.to_pandas().set_index("request_id")
    assert frame.loc[[f"e{i}" for i in range(5)], "account"].tolist() == [*ACCOUNTS[:4], None]
    assert frame["left"].to_dict() == {
        "e0": "no",
        "e1": "yes",
        **{f"e{i}": None for i in range(2, len(ACCOUNTS))},
    }
    assert frame.loc["e0", "seats"] == 2**40 and frame.loc["e0", "spend"] == 0.1 + 0.2


def test_postgres_exports_an_empty_day_as_an_empty_file(engine, tmp_path) -> None:
    day = TODAY - dt.timedelta(days=2)
    assert export_day(engine, EDGE, day, str(tmp_path)) == 0
    table = pq.read_table(day_location(str(tmp_path), day))
    assert table.num_rows == 0 and table.schema == export_schema(EDGE)


def test_a_failing_copy_raises_its_error_and_leaves_the_engine_usable(engine) -> None:
    series = text("generate_series(1, 300000) AS g")
    failing = select(func.sqrt(literal_column("-g"))).select_from(series)
    with pytest.raises(psycopg2.Error, match="square root"):
        list(copy_batches(engine, failing, pa.schema([("x", pa.float64())])))
    # A reader that refuses the rows stops a COPY larger than the pipe without hanging.
    words = select(literal_column("'w' || g")).select_from(series)
    with pytest.raises(pa.ArrowInvalid):
        list(copy_batches(engine, words, pa.schema([("x", pa.int64())])))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar_one() == 1


def test_shadow_scores_sit_beside_the_partitioned_log_and_join_it_by_request_id(engine) -> None:
    now = partitions.day_start(TODAY) + 60
    rows = _rows_at([now, now + 1])
    prediction_store.write_predictions(engine, TELCO, rows)
    shadow = [(f"r{i}", "8", now + i, 0.25 * (i + 1), "No") for i in range(2)]
    prediction_store.write_shadow_rows(engine, TELCO, shadow)
    prediction_store.write_shadow_rows(engine, TELCO, shadow[:1])  # shipped twice: kept once
    paired = text(
        "SELECT p.request_id, p.model_version, p.churn_probability, s.model_version, "
        "s.churn_probability FROM predictions p JOIN shadow_predictions s "
        "ON s.request_id = p.request_id ORDER BY p.request_id"
    )
    with engine.connect() as connection:
        joined = connection.execute(paired).all()
    assert [(r[0], r[3], r[4]) for r in joined] == [("r0", "8", 0.25), ("r1", "8", 0.5)]
    assert [(r[1], r[2]) for r in joined] == [
        (row["model_version"], row["churn_probability"]) for row in rows
    ]


def test_postgres_reads_live_pairs_as_sqlite_does(engine) -> None:
    check_pairs(engine)


def test_postgres_prunes_shadow_scores_at_the_logs_retention(engine) -> None:
    old = partitions.day_start(TODAY - dt.timedelta(days=5)) + 60
    prediction_store.write_predictions(engine, TELCO, _rows_at([old, old + 1]))  # DEFAULT
    shadow = [("r0", "8", old, 0.2, "No"), ("recent", "8", partitions.day_start(TODAY), 0.3, "No")]
    prediction_store.write_shadow_rows(engine, TELCO, shadow)
    upkeep = partitions.maintain(engine, store_schema(TELCO).predictions, TODAY, 3)
    assert upkeep.default_rows_dropped == 2  # the log's rows of that day went
    cutoff = partitions.day_start(TODAY - dt.timedelta(days=3))
    assert prediction_store.prune_shadow_predictions(engine, TELCO, cutoff) == 1
    assert prediction_store.read_shadow_predictions(engine, TELCO)["request_id"].tolist() == [
        "recent"
    ]
