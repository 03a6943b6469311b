"""Register the candidate as `@challenger`, then let the gate decide who holds `@champion`."""

import json
from datetime import UTC, datetime

import dagster as dg

from churnops.contract import Contract
from churnops.data.split import Split
from churnops.model.card import (
    CalibrationFacts,
    ContractFacts,
    DataFacts,
    GateFacts,
    ModelCard,
    render_model_card,
)
from orchestration.assets.training import DECISION_ARTIFACT, TrainedCandidate
from orchestration.metadata import platform_asset
from orchestration.provenance import git_revision
from orchestration.resources import (
    CustomerSource,
    DataContractResource,
    GatePolicy,
    ModelRegistryResource,
)
from registry.interface import decision_tags
from registry.promotion import GateVerdict, judge_versions, record_verdict

DEPLOYMENT = "deployment"
MODEL_DESCRIPTION = (
    "Customer churn classifier (sklearn Pipeline on the raw fields of its data contract, "
    "`contract/contract.yaml` of each run). "
    "`@champion` is served; `@challenger` is the latest gated candidate."
)
MODEL_CARD = "model_card.md"


@platform_asset(DEPLOYMENT, "mlflow", external=True)
def challenger_version(
    context: dg.AssetExecutionContext,
    churn_candidate: TrainedCandidate,
    candidate_evaluation: dict[str, float],
    model_registry: ModelRegistryResource,
) -> dg.Output[str]:
    """A new registered model version with lineage, contract and decision tags (the threshold
    serving and batch scoring use), aliased `@challenger`."""
    registry = model_registry.open()
    registry.ensure_model(MODEL_DESCRIPTION)
    decision = json.loads(registry.load_text(churn_candidate.run.run_id, DECISION_ARTIFACT))
    version = registry.register(
        churn_candidate.run,
        tags={
            "dagster.run_id": context.run.run_id,
            "data.fingerprint": churn_candidate.train_fingerprint,
            "git.revision": git_revision(),
            "recipe": churn_candidate.recipe,
            "holdout.roc_auc": f"{candidate_evaluation['roc_auc']:.4f}",
            **decision_tags(decision["threshold"], decision["basis"]),
        },
    )
    registry.set_challenger(version)
    return dg.Output(
        version,
        metadata={
            "model": registry.model_name,
            "version": version,
            **churn_candidate.run.contract_tags,
            "decision_threshold": decision["threshold"],
            "decision": decision["basis"],
            "mlflow_model_version": dg.MetadataValue.url(registry.version_url(version)),
        },
    )


@platform_asset(DEPLOYMENT, "mlflow", external=True)
def champion_version(
    context: dg.AssetExecutionContext,
    challenger_version: str,
    churn_candidate: TrainedCandidate,
    candidate_evaluation: dict[str, float],
    customer_split: Split,
    customer_source: CustomerSource,
    model_registry: ModelRegistryResource,
    gate_policy: GatePolicy,
    contract: DataContractResource,
) -> dg.Output[str]:
    """The promotion gate: the challenger must beat the champion (re-scored on this holdout)
    significantly, and lose no more than the tolerance on any slice; a champion trained on
    another data contract is not compared. The gate report and the model card go to the
    challenger's MLflow run."""
    data_contract = contract.load()
    registry = model_registry.open()
    verdict = judge_versions(
        registry,
        challenger_version,
        customer_split.holdout,
        gate_policy.rules(data_contract),
        data_contract,
        frozen_rows=customer_split.frozen_rows,
    )
    report = verdict.report
    context.log.info(f"gate: {report.decision}: {report.reason}")
    # The card goes first: a retry after a failed card upload must not find the alias moved.
    card = model_card(
        registry.model_name,
        churn_candidate,
        candidate_evaluation,
        customer_split,
        data_source(customer_source),
        verdict,
        data_contract,
    )
    registry.log_text(churn_candidate.run.run_id, render_model_card(card), MODEL_CARD)
    registry.tag_version(challenger_version, {"model_card": MODEL_CARD})
    outcome = record_verdict(
        registry, verdict, gate_policy.approval, live_gate=gate_policy.live_gate == "on"
    )
    if outcome.awaiting_live_evidence:
        context.log.info(
            f"version {challenger_version} passed the gate and stays @challenger: the live gate "
            "decides on paired live evidence (CHURNOPS_LIVE_GATE)"
        )
    if outcome.pending_approval:
        context.log.info(
            f"version {challenger_version} passed the gate and waits for approval: "
            f"`churnops approve {challenger_version}` or the approve_challenger job"
        )
    serving = outcome.champion_version or ""
    metadata: dict[str, object] = {
        "promoted": outcome.promoted,
        "pending_approval": outcome.pending_approval,
        "awaiting_live_evidence": outcome.awaiting_live_evidence,
        "reason": report.reason,
        "challenger_version": challenger_version,
        "challenger_auc": round(report.challenger_auc, 4),
        "champion_auc_same_holdout": (
            round(report.champion_auc, 4) if report.champion_auc is not None else "none"
        ),
        "auc_diff_ci": report.diff_ci_text(),
        "p_value": report.p_value_text(),
        "gate_report": dg.MetadataValue.md(report.overall_markdown()),
        "slices": dg.MetadataValue.md(report.slices_markdown()),
        "champion_version": serving or "none",
    }
    if serving:
        metadata["mlflow_champion"] = dg.MetadataValue.url(registry.version_url(serving))
    return dg.Output(serving, metadata=metadata)


def data_source(source: CustomerSource) -> str:
    """Where the training rows came from, in the card's words."""
    base = source.path or f"synthetic data ({source.synthetic_rows:,} rows, seed {source.seed})"
    if source.prediction_store is None:
        return base
    return f"{base} plus labelled production predictions"


def model_card(
    model_name: str,
    candidate: TrainedCandidate,
    metrics: dict[str, float],
    split: Split,
    source: str,
    verdict: GateVerdict,
    contract: Contract,
) -> ModelCard:
    """Everything the run knows about the version, for people deciding whether to trust it."""
    report = verdict.report
    comparison = report.comparison
    chosen = candidate.report
    tuning = chosen.tuning
    gate = GateFacts(
        promoted=report.promote,
        reason=report.reason,
        p_value=comparison.p_value if comparison else None,
        auc_diff=comparison.diff if comparison else None,
        ci=(comparison.ci_low, comparison.ci_high) if comparison else None,
        confidence=comparison.confidence if comparison else None,
        champion_version=verdict.previous_champion,
    )
    return ModelCard(
        model_name=model_name,
        version=verdict.challenger_version,
        created_at=datetime.now(UTC),
        data=DataFacts.from_split_summary(split.summary(), source=source),
        recipe=candidate.recipe,
        parameters=chosen.params.model_dump(),
        holdout_metrics=metrics,
        cv_table=chosen.selection.rows(),
        tuning=(
            f"Optuna, {len(tuning.trials)} trials in {tuning.seconds:.0f} s, "
            f"best CV ROC AUC {chosen.cv.roc_auc_mean:.4f}"
            if tuning is not None
            else "not run (no tuning budget, or the recipe declares no search space)"
        ),
        calibration=CalibrationFacts(chosen.calibration.method, chosen.calibration.brier),
        slice_table=report.slice_rows(),
        slice_min_rows=report.rules.slice_min_rows,
        gate=gate,
        contract=ContractFacts.from_contract(contract),
    )
