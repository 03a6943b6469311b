"""Nothing left hanging after a stop or a crash: Dagster runs whose worker died are failed (so
the daemon's run retries re-execute them), MLflow runs their dead process left RUNNING are
ended as FAILED, and a stop lets runs in flight finish within a bounded wait.

The local run launcher cannot tell that a STARTED run's worker died with the whole stack, and
the retry daemon only acts on failures recorded after its first start on an instance: so the
runs left in flight are collected before Dagster starts and failed only once the retry daemon
is listening (see `reconcile`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._core.events import JobFailureData, RunFailureReason

from registry.interface import ModelRegistry

IN_FLIGHT = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# The run-retry daemon's bookmark in the event log: it exists once the daemon has started with
# run retries on, and only failures recorded after it are retried.
RETRY_CURSOR = "EVENT_LOG_CONSUMER_CURSOR-PIPELINE_FAILURE"
ORPHAN_REASON = (
    "its run worker was lost when churnops stopped or crashed ({where}); failed by churnops so "
    "run retries can re-execute it"
)


@dataclass(frozen=True)
class InFlight:
    run_id: str
    job: str
    status: str
    created: float  # Unix time


@dataclass
class Recovery:
    """What one reconciliation did, to print and to test."""

    failed_runs: list[InFlight] = field(default_factory=list)
    ended_mlflow_runs: list[str] = field(default_factory=list)
    retry_daemon_ready: bool = True

    def lines(self) -> list[str]:
        said = [
            f"Dagster run {run.run_id[:8]} ({run.job}) was {run.status} when churnops last "
            "stopped: marked failed, it is retried"
            for run in self.failed_runs
        ]
        said += [
            f"MLflow run {run_id[:8]} was RUNNING for a dead step: ended as FAILED"
            for run_id in self.ended_mlflow_runs
        ]
        if not self.retry_daemon_ready:
            said.append("the run-retry daemon did not start listening: failed runs may not retry")
        return said


def open_instance(dagster_home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(dagster_home))


def runs_in_flight(instance: dg.DagsterInstance, queued: bool = False) -> list[InFlight]:
    """Runs a worker is (or should be) executing; with `queued`, also those waiting to start
    (they stay queued across a restart and start then, so they are never failed)."""
    statuses = [*IN_FLIGHT, dg.DagsterRunStatus.QUEUED] if queued else IN_FLIGHT
    records = instance.get_run_records(filters=dg.RunsFilter(statuses=statuses))
    return [
        InFlight(
            record.dagster_run.run_id,
            record.dagster_run.job_name,
            record.dagster_run.status.value,
            record.create_timestamp.timestamp(),
        )
        for record in records
    ]


def retry_daemon_listening(instance: dg.DagsterInstance) -> bool:
    return bool(instance.daemon_cursor_storage.get_cursor_values({RETRY_CURSOR}))


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def fail_orphans(
    instance: dg.DagsterInstance, orphans: Iterable[InFlight], where: str
) -> list[InFlight]:
    """Fail the runs of `orphans` that are still in flight (a run the new daemon has just
    started is not among them: it was collected before Dagster started)."""
    failed = []
    for orphan in orphans:
        run = instance.get_run_by_id(orphan.run_id)
        if run is None or run.status not in IN_FLIGHT:
            continue
        instance.report_run_failed(
            run,
            ORPHAN_REASON.format(where=where),
            JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION),
        )
        failed.append(orphan)
    return failed


def end_orphan_mlflow_runs(registry: ModelRegistry, instance: dg.DagsterInstance) -> list[str]:
    """MLflow runs still RUNNING whose Dagster run is over (or unknown): their process is gone."""
    ended = []
    live = {*IN_FLIGHT, dg.DagsterRunStatus.QUEUED}
    for run_id, tags in registry.unfinished_runs():
        dagster_run_id = tags.get("dagster.run_id")
        if dagster_run_id is None:
            continue  # not ours to judge
        dagster_run = instance.get_run_by_id(dagster_run_id)
        if dagster_run is not None and dagster_run.status in live:
            continue
        state = dagster_run.status.value if dagster_run else "unknown"
        registry.fail_run(
            run_id, f"Dagster run {dagster_run_id} is {state}: the step logging this run died"
        )
        ended.append(run_id)
    return ended


def reconcile(
    instance: dg.DagsterInstance,
    orphans: list[InFlight],
    registry: ModelRegistry,
    where: str,
    retry_timeout: float = 60.0,
) -> Recovery:
    """After Dagster has started: wait for the retry daemon's bookmark, fail the runs a
    previous life left in flight, end their MLflow runs."""
    ready = True
    if orphans:
        ready = wait_until(lambda: retry_daemon_listening(instance), retry_timeout)
    failed = fail_orphans(instance, orphans, where)
    ended = end_orphan_mlflow_runs(registry, instance)
    return Recovery(failed, ended, ready)


def wait_for_runs(
    instance: dg.DagsterInstance,
    timeout: float,
    stop_now: Callable[[], bool],
    on_wait: Callable[[list[InFlight], float], None],
) -> list[InFlight]:
    """Let the runs in flight finish, for at most `timeout` seconds or until `stop_now()`;
    returns those still running or queued (the next start retries or starts them)."""
    deadline = time.monotonic() + timeout
    while True:
        running = runs_in_flight(instance, queued=True)
        left = deadline - time.monotonic()
        if not running or left <= 0 or stop_now():
            return running
        on_wait(running, left)
        time.sleep(1.0)
