"""Monitoring at scale: the drift sensor's tick, a day's Parquet export and retraining's read
with millions of logged predictions in a real PostgreSQL store (partitioned by day).

Rows are bulk-loaded by `INSERT ... SELECT generate_series` (random contract values), growing
one store size by size: rows 1..1M, measure, rows 1M+1..10M, measure, and so on. Every size
spreads its rows evenly over one fixed span, fixed when the run starts: from the start of the
first of `--days` UTC days to that moment. Each size's new rows get their own step (span / new
rows), so the store is an even spread at every size (a union of even spreads over the same
span) and the newest rows are always at the end of the span: the tick's window of
`--tick-rows` x (span / logged rows) seconds before the newest row holds the newest rows, to
within one row per size loaded. After each load the tables are vacuumed and analysed, as a
live store's autovacuum would have done, so it cannot start during a measurement.

Per size it prints, each phase run in a fresh process (`--phase`), so its peak RSS is its own
and not what an earlier phase left behind (`*_base_rss_mib`: that process's RSS just before the
phase, having imported the code and connected):
- tick: what the sensor does each interval: find the newest prediction (index lookup), count
  the `--tick-rows` newest rows into the champion's bins, and, as when a window fills, the live
  quality aggregate and the report from counts;
- first tick: the same counts over the whole history (a sensor with no cursor yet);
- export: the newest full day to Parquet (rows, seconds, peak RSS);
- retrain read: the labelled predictions of the last day (`CHURNOPS_RETRAIN_WINDOW_DAYS=1`).

Run: `.venv/bin/python -m benchmarks.monitoring_store --rows 1000000,10000000,30000000`
(a throwaway server on a free port, or `--url` for an existing database: its predictions and
feedback are emptied first)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from sqlalchemy import Engine, text

from benchmarks.common import machine, markdown_table, stopwatch
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
PHASES = ("tick", "first_tick", "export", "retrain")


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
    """Rows `first`..`last` (request ids r<n>), the n-th at `start + (n - first + 1) * step`;
    then VACUUM (ANALYZE) of both tables."""
    schema = store_schema(contract)
    quote = engine.dialect.identifier_preparer.quote
    columns = [column.name for column in schema.predictions.columns]
    values = {
        "request_id": "'r' || g",
        "ts": f"{start!r} + (g - {first - 1}) * {step!r}",
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


def vacuum(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM (ANALYZE) predictions"))
        connection.execute(text("VACUUM (ANALYZE) feedback"))


def _reference(contract: Contract):
    frame = clean_customers(generate_customers(10_000, seed=1), "bench", contract).frame
    frame[SCORE_COLUMN] = np.random.default_rng(1).uniform(0, 1, len(frame))
    return binned_reference(frame, contract)


def phase(name: str, url: str, params: dict) -> dict:
    """One measured phase in this process (a fresh one: `--phase`): its seconds, its rows, the
    process's RSS before it and its peak RSS (`ru_maxrss`, every byte it ever held)."""
    contract = telco_contract()
    engine = prediction_store.connect(url, contract)
    with engine.connect() as connection:  # connected before the clock starts, as a daemon is
        connection.execute(text("SELECT 1"))
    reference = _reference(contract) if name in ("tick", "first_tick") else None
    thresholds = DriftThresholds.from_settings(Settings(monitor_min_rows=params["tick_rows"]))
    latest = params.get("latest")
    base = psutil.Process().memory_info().rss
    base_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with stopwatch() as clock:
        if name == "tick":
            latest = last_logged(engine, contract, None)
            since = latest - params["tick_rows"] * params["step"]
            counts = count_window(engine, contract, reference.fields, since, latest)
            quality = quality_from_bins(quality_bins(engine, contract, since, latest), 10, contract)
            rows = binned_report(reference, counts, thresholds, quality).rows
        elif name == "first_tick":
            everything = count_window(engine, contract, reference.fields, None, latest)
            rows = sum(everything[SCORE_COLUMN].values())
        elif name == "export":
            day = dt.date.fromisoformat(params["day"])
            rows = export_day(engine, contract, day, params["out"])
        elif name == "retrain":
            since = latest - partitions.DAY_SECONDS
            rows = len(prediction_store.labelled_records(engine, contract, since_ts=since))
        else:
            raise ValueError(f"unknown phase {name!r}; one of {PHASES}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    engine.dispose()
    return {
        "seconds": clock["seconds"],
        "rows": int(rows),
        "latest": latest,
        "base_rss_mib": base / MIB,
        "peak_rss_mib": peak / MIB,
        "peak_before_mib": base_peak / MIB,
    }


def in_child(name: str, url: str, params: dict) -> dict:
    """`phase` in a fresh Python process (this module's `--phase`), its JSON read back."""
    done = subprocess.run(  # noqa: S603 - this module, fixed arguments
        [
            *(sys.executable, "-m", "benchmarks.monitoring_store"),
            *("--phase", name, "--url", url, "--params", json.dumps(params)),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    if done.returncode != 0:
        raise RuntimeError(f"phase {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(
    url: str,
    rows: int,
    tick_rows: int,
    step: float,
    out: Path,
    day: dt.date,
    export_runs: int = 1,
) -> dict[str, object]:
    params = {"tick_rows": tick_rows, "step": step, "day": day.isoformat(), "out": str(out)}
    figures: dict[str, object] = {"rows": rows}
    tick = in_child("tick", url, params)
    params["latest"] = tick["latest"]
    for name, result in (("tick", tick), ("first_tick", in_child("first_tick", url, params))):
        figures |= {
            f"{name}_seconds": result["seconds"],
            f"{name}_rows": result["rows"],
            f"{name}_peak_rss_mib": result["peak_rss_mib"],
            f"{name}_base_rss_mib": result["base_rss_mib"],
        }
    exports = [in_child("export", url, params) for _ in range(export_runs)]
    figures |= {
        "export_day": day.isoformat(),
        "export_rows": exports[-1]["rows"],
        "export_seconds": max(e["seconds"] for e in exports),  # the worst of the runs
        "export_runs_seconds": [e["seconds"] for e in exports],
        "export_peak_rss_mib": max(e["peak_rss_mib"] for e in exports),
        "export_base_rss_mib": max(e["base_rss_mib"] for e in exports),
    }
    retrain = in_child("retrain", url, params)
    figures |= {
        "retrain_rows": retrain["rows"],
        "retrain_seconds": retrain["seconds"],
        "retrain_peak_rss_mib": retrain["peak_rss_mib"],
        "retrain_base_rss_mib": retrain["base_rss_mib"],
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
    """One store grown size by size over one span of `days` days ending now (`whole_days`:
    ending at today's midnight, so `--days 1` puts every row in the exported day)."""
    contract = telco_contract()
    engine = prediction_store.connect(url, contract)
    yesterday = partitions.day_of(time.time()) - dt.timedelta(days=1)
    end = (
        partitions.day_start(yesterday) + partitions.DAY_SECONDS - 1 if whole_days else time.time()
    )
    start = partitions.day_start(partitions.day_of(end) - dt.timedelta(days=days - 1))
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE predictions, feedback"))
        partitions.ensure_days(connection, partitions.day_of(start), partitions.day_of(end))
    results = []
    loaded = 0
    for size in sorted(sizes):
        with stopwatch() as loading:
            load(engine, contract, loaded + 1, size, start, (end - start) / (size - loaded))
        with stopwatch() as vacuuming:
            vacuum(engine)
        figures = measure(
            url, size, tick_rows, (end - start) / size, exports, yesterday, export_runs
        )
        figures |= {
            "load_rows": size - loaded,
            "load_seconds": loading["seconds"],
            "vacuum_seconds": vacuuming["seconds"],
        }
        loaded = size
        results.append(figures)
        print(json.dumps(figures), flush=True)
    engine.dispose()
    return {
        "machine": machine(),
        "days": days,
        "whole_days": whole_days,
        "span": [start, end],
        "tick_window_rows": tick_rows,
        "results": results,
    }


def render(report: dict) -> str:
    headers = [
        "logged rows",
        "tick s",
        "tick peak MiB",
        "first tick s",
        "first tick peak MiB",
        "export rows",
        "export s",
        "export peak MiB",
        "retrain rows",
        "retrain s",
        "retrain peak MiB",
        "load s (rows added)",
    ]
    rows = [
        [
            r["rows"],
            r["tick_seconds"],
            r["tick_peak_rss_mib"],
            r["first_tick_seconds"],
            r["first_tick_peak_rss_mib"],
            r["export_rows"],
            r["export_seconds"],
            r["export_peak_rss_mib"],
            r["retrain_rows"],
            r["retrain_seconds"],
            r["retrain_peak_rss_mib"],
            f"{r['load_seconds'] + r['vacuum_seconds']:,.0f} ({r['load_rows']:,})",
        ]
        for r in report["results"]
    ]
    bases = [r[f"{p}_base_rss_mib"] for r in report["results"] for p in ("tick", "export")]
    return (
        markdown_table(headers, rows)
        + f"\n\nTick: the newest {report['tick_window_rows']:,} rows counted into the bins, live "
        "quality and the report (targets: <= 2 s at 30M rows, flat memory). First tick: every "
        "logged row counted. Export: the newest full day to Parquet, the worst of its runs "
        "(target <= 60 s for 10M rows). Retrain: the last day's labelled predictions. Peak MiB: "
        "the peak RSS of a fresh process running only that phase (before it: "
        f"{min(bases):,.0f}-{max(bases):,.0f} MiB, imports and a connection). One store grown "
        f"size by size, rows spread evenly over {report['days']} days"
        + (" ending at midnight" if report.get("whole_days") else " ending at the run's start")
        + "; load s includes VACUUM (ANALYZE)"
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
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)  # one, in this process
    parser.add_argument("--params", type=json.loads, default={}, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        print(json.dumps(phase(args.phase, args.url, args.params)), flush=True)
        return
    with tempfile.TemporaryDirectory(prefix="churnops-bench-") as tmp:
        exports = Path(tmp) / "exports"
        options = (args.rows, args.days, args.tick_rows, exports, args.whole_days, args.export_runs)
        if args.url:
            report = run(args.url, *options)
        else:
            server = Postgres()
            try:
                server.start()
                report = run(server.url, *options)
            finally:
                server.remove()
    table = render(report)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    args.out.with_suffix(".md").write_text(table)


if __name__ == "__main__":
    main()
