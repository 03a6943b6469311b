"""The drift sensor: evaluates new traffic and requests retraining once per triggering window."""

from dataclasses import dataclass

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
        active = context.instance.get_runs(
            filters=dg.RunsFilter(job_name=job.name, statuses=IN_PROGRESS), limit=1
        )
        if active:
            return dg.SkipReason(f"retraining run {active[0].run_id} is still in progress")
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
            return dg.SkipReason(outcome.reason)
        return dg.RunRequest(
            run_key=f"drift-window-{since:.6f}-{outcome.cursor:.6f}",
            run_config={
                "ops": {"drift_report": {"config": {"since_ts": since, "until_ts": outcome.cursor}}}
            },
            tags={"churnops/trigger": "drift_sensor", "churnops/reason": outcome.reason[:1000]},
        )

    return drift_sensor
