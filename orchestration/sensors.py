"""The drift sensor: evaluates new traffic and requests retraining once per triggering window."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from churnops.contract import Contract
from churnops.monitoring.binned import (
    BinnedReference,
    Counts,
    add_counts,
    binned_reference,
    binned_report,
    counted_rows,
    quality_from_bins,
)
from churnops.monitoring.drift import DriftThresholds, decide_retrain
from churnops.monitoring.window_counts import count_window, last_logged, quality_bins
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
class WindowState:
    """The sensor's cursor: the window under way (since_ts < ts <= scanned_ts), counted into
    the bins of `champion`'s reference. A tick counts only the rows after `scanned_ts`, so a
    window filling slowly is never re-read, and the daemon holds O(bins), never rows."""

    since_ts: float = 0.0
    scanned_ts: float = 0.0
    champion: str | None = None
    counts: dict[str, Counts] = field(default_factory=dict)

    @classmethod
    def from_cursor(cls, cursor: str | None) -> "WindowState":
        if not cursor:
            return cls()
        if not cursor.lstrip().startswith("{"):  # the older cursor: the last window's end
            return cls(float(cursor), float(cursor))
        state = json.loads(cursor)
        return cls(state["since"], state["scanned"], state["champion"], state["counts"])

    def to_cursor(self) -> str:
        state = {
            "since": self.since_ts,
            "scanned": self.scanned_ts,
            "champion": self.champion,
            "counts": self.counts,
        }
        return json.dumps(state, separators=(",", ":"))

    @property
    def rows(self) -> int:
        return counted_rows(self.counts)

    def skip_to(self, ts: float) -> "WindowState":
        """An empty window starting at `ts`: nothing before it is monitored."""
        return WindowState(ts, ts, self.champion)

    def with_new(self, champion: str, until_ts: float, new: dict[str, Counts]) -> "WindowState":
        counts = {name: dict(bins) for name, bins in self.counts.items()}
        add_counts(counts, new)
        return WindowState(self.since_ts, until_ts, champion, counts)


@dataclass(frozen=True)
class WindowOutcome:
    retrain: bool
    reason: str
    state: WindowState  # the cursor after this tick
    window: tuple[float, float] | None = None  # the judged window, when one was judged


def assess_window(
    state: WindowState,
    reference: BinnedReference,
    quality: Callable[[], dict[str, dict[str, float]]],
    thresholds: DriftThresholds,
) -> WindowOutcome:
    """Pure sensor decision over a window's counts; `quality` is asked for live quality only
    when the window is full."""
    if state.rows < thresholds.min_rows:
        return WindowOutcome(
            False,
            f"{state.rows} new predictions; waiting for {thresholds.min_rows} to fill a window",
            state,
        )
    report = binned_report(reference, state.counts, thresholds, quality())
    decision = decide_retrain(report, thresholds)
    reason = f"vs champion v{state.champion}: {decision.reason}"
    window = (state.since_ts, state.scanned_ts)
    return WindowOutcome(decision.retrain, reason, state.skip_to(state.scanned_ts), window)


# A champion's binned reference, by training run id: the sensor bins every tick, and the
# reference (an MLflow artifact) does not change for a run.
_REFERENCES: dict[str, BinnedReference] = {}
_MAX_REFERENCES = 4


def cached_reference(run_id: str, load: Callable[[], pd.DataFrame], contract: Contract):
    key = f"{run_id}/{contract.fingerprint}"
    if key not in _REFERENCES:
        if len(_REFERENCES) >= _MAX_REFERENCES:
            _REFERENCES.pop(next(iter(_REFERENCES)))
        _REFERENCES[key] = binned_reference(load(), contract)
    return _REFERENCES[key]


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
        data_contract = contract.load()
        registry = model_registry.open()
        champion = registry.champion()
        mismatch = (
            contract_mismatch(f"champion v{champion.version}", champion.tags, data_contract)
            if champion
            else None
        )
        if mismatch is not None:  # serving refuses it too: its traffic is not this contract's
            return dg.SkipReason(f"not monitoring: {mismatch}")
        engine = prediction_store.engine()
        state = WindowState.from_cursor(context.cursor)
        latest = last_logged(engine, data_contract, state.scanned_ts)
        if champion is None or champion.run_id is None:
            why = (
                "no champion to monitor yet"
                if champion is None
                else (f"champion v{champion.version} has no training reference")
            )
            if latest is not None:  # traffic no champion can judge is passed over, not held
                context.update_cursor(state.skip_to(latest).to_cursor())
                why += f"; predictions up to {latest:.6f} are not monitored"
            return dg.SkipReason(why)
        reference = cached_reference(
            champion.run_id, lambda: registry.load_reference(champion.run_id), data_contract
        )
        if state.champion != champion.version:  # new bins: count the window again in them
            state = WindowState(state.since_ts, state.since_ts, champion.version)
            latest = last_logged(engine, data_contract, state.since_ts)
        if latest is not None:
            new = count_window(engine, data_contract, reference.fields, state.scanned_ts, latest)
            state = state.with_new(champion.version, latest, new)
        outcome = assess_window(
            state,
            reference,
            lambda: quality_from_bins(
                quality_bins(engine, data_contract, state.since_ts, state.scanned_ts),
                monitor_policy.min_labels,
                data_contract,
            ),
            monitor_policy.thresholds(),
        )
        context.update_cursor(outcome.state.to_cursor())
        if not outcome.retrain or outcome.window is None:
            return dg.SkipReason(outcome.reason + stale)
        since, until = outcome.window
        return dg.RunRequest(
            run_key=f"drift-window-{since:.6f}-{until:.6f}",
            run_config={
                "ops": {"drift_report": {"config": {"since_ts": since, "until_ts": until}}}
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
