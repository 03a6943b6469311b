"""The drift sensor: evaluates new traffic and requests retraining once per triggering window."""

from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from churnops.contract import Contract
from churnops.monitoring import prediction_store as store
from churnops.monitoring.drift import DriftThresholds, build_report, decide_retrain
from orchestration.resources import (
    DataContractResource,
    ModelRegistryResource,
    MonitorPolicy,
    PredictionStore,
)
from registry.interface import contract_mismatch

IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


@dataclass(frozen=True)
class WindowOutcome:
    retrain: bool
    reason: str
    cursor: float | None  # new cursor, or None to keep accumulating rows


def assess_window(
    window: pd.DataFrame,
    reference: pd.DataFrame | None,
    champion_version: str | None,
    thresholds: DriftThresholds,
    contract: Contract,
) -> WindowOutcome:
    """Pure sensor decision over the predictions logged since the cursor."""
    if champion_version is None:
        return WindowOutcome(False, "no champion to monitor yet", None)
    if len(window) < thresholds.min_rows:
        return WindowOutcome(
            False,
            f"{len(window)} new predictions; waiting for {thresholds.min_rows} to fill a window",
            None,
        )
    if reference is None:
        return WindowOutcome(False, f"champion v{champion_version} has no training reference", None)
    report = build_report(reference, window, thresholds, contract=contract)
    decision = decide_retrain(report, thresholds)
    reason = f"vs champion v{champion_version}: {decision.reason}"
    return WindowOutcome(decision.retrain, reason, float(window["ts"].max()))


@dataclass(frozen=True)
class RunInFlight:
    run_id: str
    status: str
    created: datetime  # UTC


def in_flight_verdict(
    runs: list[RunInFlight], now: datetime, timeout_seconds: float
) -> tuple[str | None, str]:
    """(why the sensor waits, or None; a note on runs it no longer waits for). A retraining run
    in flight holds new windows back for `timeout_seconds` at most: one stuck by a crash must
    not stop monitoring for good."""
    note = ""
    for run in sorted(runs, key=lambda r: r.created, reverse=True):
        age = (now - run.created).total_seconds()
        since = run.created.isoformat(timespec="seconds")
        if age < timeout_seconds:
            return (
                f"waiting for retraining run {run.run_id} ({run.status} since {since}, "
                f"{age:.0f} s ago) to finish; it holds new windows back for at most "
                f"{timeout_seconds:.0f} s",
                "",
            )
        note += (
            f"; not waiting for retraining run {run.run_id} ({run.status} since {since}, over "
            f"the {timeout_seconds:.0f} s timeout)"
        )
    return None, note


def build_drift_sensor(job, interval_seconds: int) -> dg.SensorDefinition:
    @dg.sensor(
        name="drift_sensor",
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Compares new predictions with the champion's training reference; "
        "requests one retraining run per drifted or degraded window.",
    )
    def drift_sensor(
        context: dg.SensorEvaluationContext,
        prediction_store: PredictionStore,
        model_registry: ModelRegistryResource,
        monitor_policy: MonitorPolicy,
        contract: DataContractResource,
    ):
        records = context.instance.get_run_records(
            filters=dg.RunsFilter(job_name=job.name, statuses=IN_PROGRESS), limit=20
        )
        in_flight = [
            RunInFlight(r.dagster_run.run_id, r.dagster_run.status.value, r.create_timestamp)
            for r in records
        ]
        waiting, stale = in_flight_verdict(
            in_flight, datetime.now(UTC), monitor_policy.retrain_timeout_seconds
        )
        if waiting is not None:
            return dg.SkipReason(waiting)
        since = float(context.cursor or 0.0)
        data_contract = contract.load()
        window = store.read_predictions(prediction_store.engine(), since, contract=data_contract)
        registry = model_registry.open()
        champion = registry.champion()
        mismatch = (
            contract_mismatch(f"champion v{champion.version}", champion.tags, data_contract)
            if champion
            else None
        )
        if mismatch is not None:  # serving refuses it too: its traffic is not this contract's
            return dg.SkipReason(f"not monitoring: {mismatch}")
        reference = None
        if champion is not None and champion.run_id and len(window) >= monitor_policy.min_rows:
            reference = registry.load_reference(champion.run_id)
        outcome = assess_window(
            window,
            reference,
            champion.version if champion else None,
            monitor_policy.thresholds(),
            data_contract,
        )
        if outcome.cursor is not None:
            context.update_cursor(str(outcome.cursor))
        if not outcome.retrain:
            return dg.SkipReason(outcome.reason + stale)
        return dg.RunRequest(
            run_key=f"drift-window-{since:.6f}-{outcome.cursor:.6f}",
            run_config={
                "ops": {"drift_report": {"config": {"since_ts": since, "until_ts": outcome.cursor}}}
            },
            tags={
                "churnops/trigger": "drift_sensor",
                "churnops/reason": (outcome.reason + stale)[:1000],
            },
        )

    return drift_sensor


def build_scoring_sensor(job, interval_seconds: int) -> dg.SensorDefinition:
    """Re-score the base whenever `@champion` moves (promotion or rollback): the list a
    retention team works from is always the serving model's."""

    @dg.sensor(
        name="champion_scoring_sensor",
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests churn_scores for today's partition when @champion moves.",
    )
    def champion_scoring_sensor(
        context: dg.SensorEvaluationContext,
        model_registry: ModelRegistryResource,
        contract: DataContractResource,
    ):
        champion = model_registry.open().champion()
        if champion is None:
            return dg.SkipReason("no @champion yet")
        mismatch = contract_mismatch(
            f"champion v{champion.version}", champion.tags, contract.load()
        )
        if mismatch is not None:
            return dg.SkipReason(f"not scoring: {mismatch}")
        if context.cursor == champion.version:
            return dg.SkipReason(f"champion v{champion.version} already scored")
        previous = context.cursor or "none"
        context.update_cursor(champion.version)
        today = datetime.now(UTC).date().isoformat()
        return dg.RunRequest(
            run_key=f"champion-{previous}-to-v{champion.version}-{today}",
            partition_key=today,
            tags={
                "churnops/trigger": "champion_scoring_sensor",
                "churnops/reason": f"@champion moved from {previous} to v{champion.version}",
            },
        )

    return champion_scoring_sensor
