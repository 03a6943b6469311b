"""Pipeline benchmark: the real training job at each size, then the monitor's window computation.

    python -m benchmarks.pipeline [--rows 100000,1000000] [--monitor-rows 1000000] [--smoke]

A real `mlflow server` runs in a temporary folder. Each size materializes the real assets
(ingest → clean → checks → split → train → evaluate → register → gate) in-process with Dagster,
in a fresh process so one size's memory does not colour the next. Per step: wall time from the
run's event log, the highest RSS of that process during the step, and input rows per second.
The monitor then reads a window of logged predictions from SQLite and compares it with the
champion's reference the way the drift sensor does. Figures, not assertions: CI runs `--smoke`.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor
from contextlib import redirect_stdout
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from benchmarks.common import (
    MIB,
    RssSampler,
    RssTimeline,
    machine,
    markdown_table,
    stopwatch,
    write_report,
)
from launcher.mlflow_server import local_mlflow_server

# Dagster, MLflow and sklearn are imported inside the functions that run in the fresh processes,
# so the parent (which only holds the MLflow server and samples its memory) stays small.
if TYPE_CHECKING:
    import dagster as dg

    from churnops.settings import Settings

SMOKE_ROWS = (5_000,)
SMOKE_MONITOR_ROWS = 20_000
FULL_ROWS = (100_000, 1_000_000)
FULL_MONITOR_ROWS = 1_000_000
SEED = 42
# Dagster's per-event DEBUG lines would bury the progress display; warnings still show.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def step_spans(records: list[Any]) -> dict[str, tuple[float, float]]:
    """Step key → (start, end) Unix times of its successful attempt, in the order steps began.

    A retried step's span runs from its last start, so the figure is one clean attempt."""
    starts: dict[str, float] = {}
    spans: dict[str, tuple[float, float]] = {}
    for record in records:
        if _is(record, "STEP_START"):
            starts[record.step_key] = record.timestamp
        elif _is(record, "STEP_SUCCESS") and record.step_key in starts:
            spans[record.step_key] = (starts[record.step_key], record.timestamp)
    return dict(sorted(spans.items(), key=lambda item: item[1][0]))


def _materialize(
    settings: Settings, instance: dg.DagsterInstance, label: str
) -> dg.ExecuteInProcessResult:
    """Run the training job in a thread while the main thread shows which step is running."""
    import dagster as dg

    from orchestration.definitions import build_resources, defs
    from orchestration.jobs import TRAINING_GROUPS

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = dg.materialize(
                [*defs.assets, *defs.asset_checks],
                selection=dg.AssetSelection.groups(*TRAINING_GROUPS),
                resources=build_resources(settings),
                instance=instance,
                run_config=QUIET,
            )
        except BaseException as exc:  # re-raised below, in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="materialize")
    worker.start()
    with _progress() as progress:
        task = progress.add_task(label)
        while worker.is_alive():
            running = _running_step(instance)
            progress.update(task, description=f"{label}: {running or 'starting'}")
            worker.join(0.5)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _running_step(instance: dg.DagsterInstance) -> str | None:
    runs = instance.get_runs(limit=1)
    if not runs:
        return None
    started = [r.step_key for r in instance.all_logs(runs[0].run_id) if _is(r, "STEP_START")]
    return started[-1] if started else None


def _is(record: Any, event_type: str) -> bool:
    return record.dagster_event is not None and record.dagster_event.event_type_value == event_type


def train_once(tracking_uri: str, rows: int, workdir: str) -> dict[str, Any]:
    """One materialization of the training job at `rows` synthetic rows (run in a fresh process)."""
    import dagster as dg

    from churnops.settings import Settings

    settings = Settings(
        mlflow_tracking_uri=tracking_uri,
        model_name=f"bench-{rows}",
        synthetic_rows=rows,
        seed=SEED,
        prediction_store_url="sqlite://",
        home=Path(workdir),
    )
    instance = dg.DagsterInstance.ephemeral(tempdir=workdir)
    with RssTimeline(children=False) as rss, stopwatch() as wall:
        result = _materialize(settings, instance, f"{rows:,} rows")
    spans = step_spans(list(instance.all_logs(result.run_id)))
    candidate = result.output_for_node("churn_candidate")
    steps = [
        {
            "step": step,
            "seconds": end - start,
            "peak_rss_mib": rss.peak_between(start, end) / MIB,
            "rows_per_second": rows / (end - start),
        }
        for step, (start, end) in spans.items()
    ]
    return {
        "rows": rows,
        "end_to_end_seconds": wall["seconds"],
        "peak_rss_mib": rss.peak / MIB,
        "rows_per_second": rows / wall["seconds"],
        "roc_auc": result.output_for_node("candidate_evaluation")["roc_auc"],
        "model_name": settings.model_name,
        "champion_version": result.output_for_node("champion_version"),
        "champion_run_id": candidate.run.run_id,
        "steps": steps,
    }


def logged_predictions(model: Any, rows: int, version: str, seed: int) -> pd.DataFrame:
    """`rows` predictions as the service logs them: customers with mild drift, scored by the
    champion, one millisecond apart."""
    from churnops.contract import telco_contract
    from churnops.data.synthetic import DriftSpec, generate_customers
    from churnops.model import scoring

    contract = telco_contract()
    target, key = contract.target.name, contract.id_name
    customers = generate_customers(rows, seed=seed, drift=DriftSpec(tenure_scale=0.8))
    scores = scoring.churn_probability(model, customers, contract)
    logged = customers.drop(columns=[target]).astype(
        {c: str for c in customers.select_dtypes("category").columns if c != target}
    )
    logged.insert(0, "request_id", np.char.add("r", np.arange(rows).astype(str)).astype(object))
    logged.insert(1, "ts", 1_700_000_000.0 + np.arange(rows) / 1000.0)
    logged.insert(2, "model_version", version)
    logged["churn_probability"] = scores
    logged["churn"] = np.where(
        scores >= 0.5, contract.target.positive_label, contract.target.negative_label
    )
    logged[key] = logged[key].astype(object)
    return logged


def feedback_for(logged: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Late labels for a fifth of the predictions by request id and a fiftieth by customer id,
    drawn from the scores so live AUC is meaningful."""
    from churnops.contract import telco_contract

    contract = telco_contract()
    rng = np.random.default_rng(seed)
    churned = rng.random(len(logged)) < logged["churn_probability"].to_numpy()
    label = np.where(churned, contract.target.positive_label, contract.target.negative_label)
    by_request = rng.random(len(logged)) < 0.2
    by_customer = ~by_request & (rng.random(len(logged)) < 0.02)
    return pd.DataFrame(
        {
            "ts": logged["ts"].max() + 1.0,
            "request_id": logged["request_id"].where(by_request, None),
            contract.id_name: logged[contract.id_name].where(by_customer, None),
            contract.target.name: label,
        }
    )[by_request | by_customer]


def fill_store(db_path: Path, logged: pd.DataFrame, labels: pd.DataFrame) -> None:
    """Bulk insert through sqlite3 (setup, not measured; the service writes in small batches)."""
    from churnops.contract import telco_contract
    from churnops.monitoring import prediction_store as store

    store.connect(f"sqlite:///{db_path}", telco_contract()).dispose()
    with sqlite3.connect(db_path) as connection:
        logged.to_sql("predictions", connection, if_exists="append", index=False, chunksize=50_000)
        labels.to_sql("feedback", connection, if_exists="append", index=False, chunksize=50_000)


def monitor_once(tracking_uri: str, champion: dict[str, Any], rows: int, workdir: str) -> dict:
    """The drift sensor's work on one window of `rows` logged predictions (in a fresh process):
    load the champion's reference, read the window, compute the statistics and the decision."""
    from churnops.contract import telco_contract
    from churnops.monitoring import prediction_store as store
    from churnops.monitoring.drift import build_report, decide_retrain
    from churnops.settings import Settings
    from orchestration.definitions import build_resources
    from registry.mlflow_registry import MlflowModelRegistry

    contract = telco_contract()
    db_path = Path(workdir) / "predictions.db"
    with _progress() as progress:
        progress.add_task(f"monitor: logging {rows:,} predictions (setup)")
        registry = MlflowModelRegistry(tracking_uri, champion["model_name"], "benchmark")
        logged = logged_predictions(
            registry.load_model(champion["champion_version"]),
            rows,
            champion["champion_version"],
            SEED + 1,
        )
        fill_store(db_path, logged, feedback_for(logged, SEED + 2))
        del logged
    resources = build_resources(Settings(prediction_store_url=f"sqlite:///{db_path}"))
    thresholds = resources["monitor_policy"].thresholds()
    with _progress() as progress, RssSampler(children=False) as rss:
        progress.add_task(f"monitor: window of {rows:,} predictions")
        with stopwatch() as total:
            with stopwatch() as reference_time:
                reference = registry.load_reference(champion["champion_run_id"])
            with stopwatch() as read_time:
                window = store.read_predictions(
                    resources["prediction_store"].engine(), 0.0, contract=contract
                )
            with stopwatch() as statistics_time:
                report = build_report(reference, window, thresholds, contract)
                decision = decide_retrain(report, thresholds)
    return {
        "rows": len(window),
        "labelled_rows": int(window[contract.target.name].notna().sum()),
        "reference_seconds": reference_time["seconds"],
        "read_seconds": read_time["seconds"],
        "statistics_seconds": statistics_time["seconds"],
        "total_seconds": total["seconds"],
        "peak_rss_mib": rss.peak / MIB,
        "retrain": decision.retrain,
        "reason": decision.reason,
    }


def _in_fresh_process(function: Any, *args: Any) -> Any:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_quietly, function, *args).result()


def _quietly(function: Any, *args: Any) -> Any:
    """MLflow prints run links to stdout; keep stdout for the figures."""
    with redirect_stdout(sys.stderr):
        return function(*args)


def run(sizes: tuple[int, ...], monitor_rows: int) -> dict[str, Any]:
    """Every size through the training job, then the monitor against the last size's champion."""
    with tempfile.TemporaryDirectory(prefix="churnops-bench-") as tmp:
        root = Path(tmp)
        tracking_uri, server = local_mlflow_server(root)
        with server:
            pipeline = []
            for rows in sizes:
                workdir = root / f"run-{rows}"
                workdir.mkdir()
                with RssSampler(pid=server.proc.pid) as mlflow_rss:
                    figures = _in_fresh_process(train_once, tracking_uri, rows, str(workdir))
                figures["mlflow_server_peak_rss_mib"] = mlflow_rss.peak / MIB
                pipeline.append(figures)
            (root / "monitor").mkdir()
            monitor = _in_fresh_process(
                monitor_once, tracking_uri, pipeline[-1], monitor_rows, str(root / "monitor")
            )
    return {"machine": machine(), "pipeline": pipeline, "monitor": monitor}


def render(report: dict[str, Any]) -> str:
    """Machine facts, then one table for the training job and one for the monitor."""
    facts = "\n".join(f"- {key}: {value}" for key, value in report["machine"].items())
    rows: list[list[object]] = []
    for size in report["pipeline"]:
        rows += [
            [size["rows"], s["step"], s["seconds"], s["peak_rss_mib"], s["rows_per_second"]]
            for s in size["steps"]
        ]
        rows.append(
            [
                size["rows"],
                f"**end to end** (ROC AUC {size['roc_auc']:.3f})",
                size["end_to_end_seconds"],
                size["peak_rss_mib"],
                size["rows_per_second"],
            ]
        )
    pipeline = markdown_table(["rows", "step", "seconds", "peak RSS MiB", "rows/s"], rows)
    m = report["monitor"]
    monitor = markdown_table(
        ["rows", "reference s", "read s", "statistics s", "total s", "peak RSS MiB"],
        [
            [
                m["rows"],
                m["reference_seconds"],
                m["read_seconds"],
                m["statistics_seconds"],
                m["total_seconds"],
                m["peak_rss_mib"],
            ]
        ],
    )
    servers = ", ".join(
        f"{size['rows']:,} rows: {size['mlflow_server_peak_rss_mib']:,.0f} MiB"
        for size in report["pipeline"]
    )
    return (
        f"{facts}\n\n### Training job (rows/s = input rows / step seconds)\n\n{pipeline}\n\n"
        f"MLflow server peak RSS (separate process, not in the figures above): {servers}\n\n"
        f"### Monitoring window ({m['labelled_rows']:,} labelled)\n\n{monitor}"
    )


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=_sizes, default=FULL_ROWS, help="comma-separated sizes")
    parser.add_argument("--monitor-rows", type=int, default=FULL_MONITOR_ROWS)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: CI keeps this working")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/pipeline.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    sizes, monitor_rows = args.rows, args.monitor_rows
    if args.smoke:
        sizes, monitor_rows = SMOKE_ROWS, SMOKE_MONITOR_ROWS
    report = run(sizes, monitor_rows)
    table = render(report)
    print(table)
    write_report(args.out, report, table)


if __name__ == "__main__":
    main()
