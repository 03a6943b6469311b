"""Monitoring at scale: the drift sensor's tick, a day's Parquet export and retraining's read
with millions of logged predictions in a real PostgreSQL store (partitioned by day).

Rows are bulk-loaded by `INSERT ... SELECT generate_series` (random contract values, spread
evenly over `--days` UTC days ending now), growing the store size by size. Per size it prints:
- tick: what the sensor does each interval: find the newest prediction (index lookup), count
  the `--tick-rows` newest rows into the champion's bins, and, as when a window fills, the live
  quality aggregate and the report from counts; the process's peak RSS over it;
- first tick: the same counts over the whole history (a sensor with no cursor yet);
- export: the newest full day to Parquet (rows, seconds, peak RSS);
- retrain read: the labelled predictions of the last day (`CHURNOPS_RETRAIN_WINDOW_DAYS=1`).

Run: `.venv/bin/python -m benchmarks.monitoring_store --rows 1000000,10000000,30000000`
(a throwaway server on a free port, or `--url` for an existing database)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, text

from benchmarks.common import RssSampler, machine, markdown_table, stopwatch
from churnops.contract import Contract, Feature, telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.synthetic import generate_customers
from churnops.monitoring import partitions, prediction_store
from churnops.monitoring.binned import binned_reference, binned_report, quality_from_bins
from churnops.monitoring.drift import SCORE_COLUMN, DriftThresholds
from churnops.monitoring.export import export_day
from churnops.monitoring.prediction_store import store_schema
from churnops.monitoring.window_counts import count_window, last_logged, quality_bins
from churnops.settings import Settings
from tests.postgres import Postgres

MIB = 1024 * 1024
FULL_ROWS = (1_000_000, 10_000_000, 30_000_000)
LOAD_CHUNK = 1_000_000
LABEL_EVERY = 1000  # one prediction in this many gets a feedback label


def _value_sql(feature: Feature) -> str:
    if feature.kind == "categorical":
        levels = ", ".join("'" + c.replace("'", "''") + "'" for c in feature.categories or ("x",))
        count = len(feature.categories or ("x",))
        return f"(ARRAY[{levels}])[1 + floor(random() * {count})::int]"
    if feature.kind == "boolean":
        return "random() < 0.5"
    if feature.kind == "integer":
        return "floor(random() * 73)::bigint"
    return "round((random() * 120)::numeric, 2)::float8"


def load(engine: Engine, contract: Contract, first: int, last: int, start: float, step: float):
    """Rows `first`..`last` (request ids r<n>), the n-th at `start + n * step`."""
    schema = store_schema(contract)
    quote = engine.dialect.identifier_preparer.quote
    columns = [column.name for column in schema.predictions.columns]
    values = {
        "request_id": "'r' || g",
        "ts": f"{start!r} + g * {step!r}",
        "model_version": "'1'",
        contract.id_name: "'c' || g",
        SCORE_COLUMN: "random()",
        "churn": "CASE WHEN random() < 0.3 THEN 'Yes' ELSE 'No' END",
        **{f.name: _value_sql(f) for f in contract.features},
    }
    names = ", ".join(quote(c) for c in columns)
    select = ", ".join(values[c] for c in columns)
    target = quote(contract.target.name)
    with engine.begin() as connection:
        for low in range(first, last + 1, LOAD_CHUNK):
            high = min(low + LOAD_CHUNK - 1, last)
            bounds = {"low": low, "high": high}
            connection.execute(
                text(
                    f"INSERT INTO predictions ({names}) SELECT {select} "  # noqa: S608
                    "FROM generate_series(CAST(:low AS bigint), CAST(:high AS bigint)) g"
                ),
                bounds,
            )
            connection.execute(
                text(
                    f"INSERT INTO feedback (ts, request_id, {target}) "  # noqa: S608
                    "SELECT 0, 'r' || g, CASE WHEN random() < 0.3 THEN 'Yes' ELSE 'No' END "
                    f"FROM generate_series(CAST(:low AS bigint), CAST(:high AS bigint), "
                    f"{LABEL_EVERY}) g"
                ),
                bounds,
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE predictions"))
        connection.execute(text("ANALYZE feedback"))


def _reference(contract: Contract):
    frame = clean_customers(generate_customers(10_000, seed=1), "bench", contract).frame
    frame[SCORE_COLUMN] = np.random.default_rng(1).uniform(0, 1, len(frame))
    return binned_reference(frame, contract)


def measure(
    engine: Engine,
    contract: Contract,
    rows: int,
    tick_rows: int,
    step: float,
    out: Path,
    day: dt.date,
    export_runs: int = 1,
):
    reference = _reference(contract)
    thresholds = DriftThresholds.from_settings(Settings(monitor_min_rows=tick_rows))
    sampler = RssSampler(children=False)
    figures: dict[str, object] = {"rows": rows}
    with sampler:
        sampler.reset()
        with stopwatch() as tick:
            latest = last_logged(engine, contract, None)
            since = latest - tick_rows * step
            counts = count_window(engine, contract, reference.fields, since, latest)
            quality = quality_from_bins(quality_bins(engine, contract, since, latest), 10, contract)
            report = binned_report(reference, counts, thresholds, quality)
        figures |= {
            "tick_seconds": tick["seconds"],
            "tick_rows": report.rows,
            "tick_peak_rss_mib": sampler.peak / MIB,
        }
        sampler.reset()
        with stopwatch() as first:
            everything = count_window(engine, contract, reference.fields, None, latest)
        figures |= {
            "first_tick_seconds": first["seconds"],
            "first_tick_rows": sum(everything[SCORE_COLUMN].values()),
            "first_tick_peak_rss_mib": sampler.peak / MIB,
        }
        sampler.reset()
        runs = []
        for _ in range(export_runs):
            with stopwatch() as export:
                exported = export_day(engine, contract, day, str(out))
            runs.append(export["seconds"])
        figures |= {
            "export_day": day.isoformat(),
            "export_rows": exported,
            "export_seconds": max(runs),  # the worst of the runs
            "export_runs_seconds": runs,
            "export_peak_rss_mib": sampler.peak / MIB,
        }
        sampler.reset()
        with stopwatch() as retrain:
            labelled = prediction_store.labelled_records(
                engine, contract, since_ts=latest - partitions.DAY_SECONDS
            )
        figures |= {
            "retrain_rows": len(labelled),
            "retrain_seconds": retrain["seconds"],
            "retrain_peak_rss_mib": sampler.peak / MIB,
        }
    return figures


def run(
    url: str,
    sizes: tuple[int, ...],
    days: int,
    tick_rows: int,
    exports: Path,
    whole_days: bool = False,
    export_runs: int = 1,
) -> dict:
    """Each size loaded afresh, spread over `days` days ending now (`whole_days`: ending at
    today's midnight, so `--days 1` puts every row in the exported day)."""
    contract = telco_contract()
    engine = prediction_store.connect(url, contract)
    results = []
    for size in sorted(sizes):
        yesterday = partitions.day_of(time.time()) - dt.timedelta(days=1)
        end = (
            partitions.day_start(yesterday) + partitions.DAY_SECONDS - 1
            if whole_days
            else time.time()
        )
        start = partitions.day_start(partitions.day_of(end) - dt.timedelta(days=days - 1))
        step = (end - start) / size
        with engine.begin() as connection:
            connection.execute(text("TRUNCATE predictions, feedback"))
            partitions.ensure_days(connection, partitions.day_of(start), partitions.day_of(end))
        with stopwatch() as loading:
            load(engine, contract, 1, size, start, step)
        figures = measure(engine, contract, size, tick_rows, step, exports, yesterday, export_runs)
        figures["load_seconds"] = loading["seconds"]
        results.append(figures)
        print(json.dumps(figures), flush=True)
    engine.dispose()
    return {
        "machine": machine(),
        "days": days,
        "whole_days": whole_days,
        "tick_window_rows": tick_rows,
        "results": results,
    }


def render(report: dict) -> str:
    headers = [
        "logged rows",
        "tick s",
        "tick peak MiB",
        "first tick s",
        "export rows",
        "export s",
        "export peak MiB",
        "retrain rows",
        "retrain s",
    ]
    rows = [
        [
            r["rows"],
            r["tick_seconds"],
            r["tick_peak_rss_mib"],
            r["first_tick_seconds"],
            r["export_rows"],
            r["export_seconds"],
            r["export_peak_rss_mib"],
            r["retrain_rows"],
            r["retrain_seconds"],
        ]
        for r in report["results"]
    ]
    return (
        markdown_table(headers, rows)
        + f"\n\nTick: the newest {report['tick_window_rows']:,} rows counted into the bins, live "
        "quality and the report (targets: <= 2 s at 30M rows, flat memory). First tick: every "
        "logged row counted. Export: the newest full day to Parquet, the worst of its runs "
        f"(target <= 60 s for 10M rows). Rows spread over {report['days']} days"
        + (" ending at midnight" if report.get("whole_days") else "")
        + f". Machine: {report['machine']}\n"
    )


def _sizes(text_value: str) -> tuple[int, ...]:
    return tuple(int(part.replace("_", "")) for part in text_value.split(",") if part.strip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=_sizes, default=FULL_ROWS, help="comma-separated sizes")
    parser.add_argument("--days", type=int, default=3, help="days the rows spread over")
    parser.add_argument("--tick-rows", type=int, default=10_000, help="new rows per tick")
    parser.add_argument(
        "--whole-days", action="store_true", help="rows end at today's midnight, not now"
    )
    parser.add_argument(
        "--export-runs", type=int, default=1, help="exports of the day per size (worst shown)"
    )
    parser.add_argument("--url", help="PostgreSQL URL; default a throwaway server")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/monitoring.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="churnops-bench-") as tmp:
        exports = Path(tmp) / "exports"
        if args.url:
            report = run(
                args.url,
                args.rows,
                args.days,
                args.tick_rows,
                exports,
                args.whole_days,
                args.export_runs,
            )
        else:
            server = Postgres()
            try:
                server.start()
                report = run(
                    server.url,
                    args.rows,
                    args.days,
                    args.tick_rows,
                    exports,
                    args.whole_days,
                    args.export_runs,
                )
            finally:
                server.remove()
    table = render(report)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    args.out.with_suffix(".md").write_text(table)


if __name__ == "__main__":
    main()
