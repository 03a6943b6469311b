"""The gate on live evidence: `live_gate_sensor` watches the shadowed `@challenger`'s paired
comparison with `@champion` and, once enough labelled paired requests decide it, requests the
`live_gate` job, which judges again, logs the comparison to MLflow (`churn-monitoring`) and
records the verdict: a promotion through the usual path, or a rejection tag. A run key per
(challenger, champion) pair makes one decision per pair. With the live gate off the same job
runs once per pair as a report: the comparison in MLflow and in Dagster, no alias moved."""

from dataclasses import dataclass

import dagster as dg
from pydantic import Field

from churnops.contract import Contract
from churnops.monitoring.live_comparison import LiveComparison
from churnops.monitoring.live_gate import LiveVerdict, judge_live
from churnops.monitoring.live_pairs import live_comparison
from orchestration.resources import (
    DataContractResource,
    LiveGatePolicy,
    ModelRegistryResource,
    PredictionStore,
)
from registry.interface import CHALLENGER, ModelRegistry, RunRef, VersionInfo, contract_mismatch
from registry.live_gate import comparison_since, record_live_verdict

REPORT_JSON = "live_comparison/report.json"
REPORT_MARKDOWN = "live_comparison/report.md"


@dataclass(frozen=True)
class Rollout:
    champion: VersionInfo
    challenger: VersionInfo


def rollout_pair(registry: ModelRegistry, contract: Contract) -> tuple[Rollout | None, str]:
    """The champion and the challenger to judge, or None and why there is nothing to judge."""
    champion, challenger = registry.champion(), registry.by_alias(CHALLENGER)
    if champion is None:
        return None, "no @champion to compare with"
    if challenger is None or challenger.version == champion.version:
        return None, f"no @challenger beside champion v{champion.version}"
    for role, info in (("champion", champion), ("challenger", challenger)):
        mismatch = contract_mismatch(f"{role} v{info.version}", info.tags, contract)
        if mismatch is not None:
            return None, f"not comparing: {mismatch}"
    tags = challenger.tags
    decided = tags.get("live_gate.decision")
    if decided and tags.get("live_gate.champion_version") == champion.version:
        return None, (
            f"challenger v{challenger.version} was already {decided} by the live gate against "
            f"champion v{champion.version}"
        )
    if tags.get("gate.decision") == "rejected":
        return None, (
            f"challenger v{challenger.version} was rejected by the offline gate "
            f"({tags.get('gate.summary', 'see its gate.reason')}): not judged live"
        )
    return Rollout(champion, challenger), ""


def compare_rollout(
    registry: ModelRegistry,
    engine,
    contract: Contract,
    pair: Rollout,
    policy: LiveGatePolicy,
) -> LiveComparison | None:
    since = comparison_since(registry, pair.champion.version, policy.window_days)
    return live_comparison(
        engine,
        contract,
        pair.champion.version,
        pair.challenger.version,
        since,
        policy.rules().confidence,
    )


class LiveGateConfig(dg.Config):
    challenger_version: str = Field(description="The @challenger to judge (no-op if it moved).")
    champion_version: str = Field(description="The @champion it is compared with.")


def _log_comparison(
    registry: ModelRegistry, comparison: LiveComparison, verdict: LiveVerdict, run_id: str
) -> RunRef:
    """A `churn-monitoring` run: the comparison's metrics and its JSON and Markdown report."""
    champion, challenger = comparison.champion.version, comparison.challenger.version
    run = registry.log_monitoring_run(
        f"live-v{challenger}-vs-v{champion}",
        comparison.metrics(),
        {},
        {
            "dagster.run_id": run_id,
            "live.champion_version": champion,
            "live.challenger_version": challenger,
            "live.decision": verdict.decision,
        },
    )
    registry.log_text(run.run_id, comparison.to_json(), REPORT_JSON)
    report = f"# Live comparison: {verdict.decision}\n\n{verdict.reason}\n\n"
    registry.log_text(run.run_id, report + comparison.to_markdown(), REPORT_MARKDOWN)
    return run


def comparison_metadata(comparison: LiveComparison) -> dict[str, object]:
    auc, brier = comparison.auc_diff, comparison.brier_diff
    return {
        "champion_version": comparison.champion.version,
        "challenger_version": comparison.challenger.version,
        "labelled_pairs": comparison.labelled,
        "champion_auc": comparison.champion.auc,
        "challenger_auc": comparison.challenger.auc,
        "auc_diff_ci": auc.text() if auc else "n/a",
        "champion_brier": round(comparison.champion.brier, 4),
        "challenger_brier": round(comparison.challenger.brier, 4),
        "brier_diff_ci": brier.text() if brier else "n/a",
        "champion_ece": round(comparison.champion.ece, 4),
        "challenger_ece": round(comparison.challenger.ece, 4),
        "live_comparison": dg.MetadataValue.md(comparison.to_markdown()),
    }


@dg.op(description="Judge @challenger on paired live evidence; promote or record a rejection.")
def judge_live_evidence(
    context: dg.OpExecutionContext,
    config: LiveGateConfig,
    model_registry: ModelRegistryResource,
    prediction_store: PredictionStore,
    live_gate_policy: LiveGatePolicy,
    contract: DataContractResource,
) -> dg.Output[str]:
    registry, data_contract = model_registry.open(), contract.load()
    pair, why = rollout_pair(registry, data_contract)
    wanted = (config.champion_version, config.challenger_version)
    if pair is None or (pair.champion.version, pair.challenger.version) != wanted:
        why = why or "the aliases moved on since the request"
        context.log.info(f"nothing to judge: {why}")
        return dg.Output("", metadata={"decision": "nothing to judge", "reason": why})
    engine = prediction_store.engine()
    comparison = compare_rollout(registry, engine, data_contract, pair, live_gate_policy)
    verdict = judge_live(comparison, live_gate_policy.rules())
    if comparison is None or verdict.decision == "wait":
        return dg.Output("", metadata={"decision": "wait", "reason": verdict.reason})
    run = _log_comparison(registry, comparison, verdict, context.run.run_id)
    if not live_gate_policy.enabled:
        context.log.info(f"live comparison (the live gate is off): {verdict.reason}")
        return dg.Output(
            "",
            metadata={
                "decision": f"reported only (the live gate is off; it would {verdict.decision})",
                "reason": verdict.reason,
                **comparison_metadata(comparison),
                "mlflow_run": dg.MetadataValue.url(registry.run_url(run)),
            },
        )
    outcome = record_live_verdict(registry, comparison, verdict, live_gate_policy.approval)
    context.log.info(f"live gate: {outcome.decision}: {verdict.reason}")
    champion = registry.champion()
    return dg.Output(
        champion.version if champion else "",
        metadata={
            "decision": outcome.decision,
            "reason": verdict.reason,
            **comparison_metadata(comparison),
            "mlflow_run": dg.MetadataValue.url(registry.run_url(run)),
        },
    )


@dg.job(
    description="Requested by live_gate_sensor: judge @challenger on paired live evidence, "
    "log the comparison to MLflow, promote it or record the rejection."
)
def live_gate() -> None:
    judge_live_evidence()


def build_live_gate_sensor(job, interval_seconds: int) -> dg.SensorDefinition:
    @dg.sensor(
        name="live_gate_sensor",
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Once enough labelled paired requests compare the shadowed @challenger with "
        "@champion, requests the live_gate job: it decides with CHURNOPS_LIVE_GATE=on, and only "
        "reports the comparison (MLflow, Dagster) when off.",
    )
    def live_gate_sensor(
        context: dg.SensorEvaluationContext,
        model_registry: ModelRegistryResource,
        prediction_store: PredictionStore,
        live_gate_policy: LiveGatePolicy,
        contract: DataContractResource,
    ):
        registry, data_contract = model_registry.open(), contract.load()
        pair, why = rollout_pair(registry, data_contract)
        if pair is None:
            return dg.SkipReason(why)
        engine = prediction_store.engine()
        comparison = compare_rollout(registry, engine, data_contract, pair, live_gate_policy)
        verdict = judge_live(comparison, live_gate_policy.rules())
        versions = f"challenger v{pair.challenger.version} vs champion v{pair.champion.version}"
        if verdict.decision == "wait":
            return dg.SkipReason(f"{versions}: {verdict.reason}")
        kind = "live-gate" if live_gate_policy.enabled else "live-comparison"
        return dg.RunRequest(
            run_key=f"{kind}-v{pair.challenger.version}-vs-v{pair.champion.version}",
            run_config={
                "ops": {
                    "judge_live_evidence": {
                        "config": {
                            "challenger_version": pair.challenger.version,
                            "champion_version": pair.champion.version,
                        }
                    }
                }
            },
            tags={
                "churnops/trigger": "live_gate_sensor",
                "churnops/reason": verdict.reason[:1000],
            },
        )

    return live_gate_sensor
