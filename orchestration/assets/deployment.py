"""Register the candidate as `@challenger`, then let the gate decide who holds `@champion`."""

import dagster as dg

from churnops.data.split import Split
from orchestration.assets.training import TrainedCandidate
from orchestration.metadata import platform_asset
from orchestration.provenance import git_revision
from orchestration.resources import ModelRegistryResource, TrainingPolicy
from registry.promotion import gate_challenger

DEPLOYMENT = "deployment"
MODEL_DESCRIPTION = (
    "Customer churn classifier (sklearn Pipeline on raw Telco fields). "
    "`@champion` is served; `@challenger` is the latest gated candidate."
)


@platform_asset(DEPLOYMENT, "mlflow", external=True)
def challenger_version(
    context: dg.AssetExecutionContext,
    churn_candidate: TrainedCandidate,
    candidate_evaluation: dict[str, float],
    model_registry: ModelRegistryResource,
) -> dg.Output[str]:
    """A new registered model version with lineage tags, aliased `@challenger`."""
    registry = model_registry.open()
    registry.ensure_model(MODEL_DESCRIPTION)
    version = registry.register(
        churn_candidate.run,
        tags={
            "dagster.run_id": context.run.run_id,
            "data.fingerprint": churn_candidate.train_fingerprint,
            "git.revision": git_revision(),
            "recipe": churn_candidate.recipe,
            "holdout.roc_auc": f"{candidate_evaluation['roc_auc']:.4f}",
        },
    )
    registry.set_challenger(version)
    return dg.Output(
        version,
        metadata={
            "model": registry.model_name,
            "version": version,
            "mlflow_model_version": dg.MetadataValue.url(registry.version_url(version)),
        },
    )


@platform_asset(DEPLOYMENT, "mlflow", external=True)
def champion_version(
    challenger_version: str,
    candidate_evaluation: dict[str, float],
    customer_split: Split,
    model_registry: ModelRegistryResource,
    training_policy: TrainingPolicy,
) -> dg.Output[str]:
    """The promotion gate: re-score the current champion on this holdout, promote if beaten."""
    registry = model_registry.open()
    outcome = gate_challenger(
        registry,
        challenger_version,
        candidate_evaluation["roc_auc"],
        customer_split.holdout,
        min_auc=training_policy.min_auc,
        margin=training_policy.margin,
    )
    decision = outcome.decision
    serving = outcome.champion_version or ""
    metadata: dict[str, object] = {
        "promoted": decision.promote,
        "reason": decision.reason,
        "challenger_version": challenger_version,
        "challenger_auc": round(decision.challenger_auc, 4),
        "champion_auc_same_holdout": (
            round(decision.champion_auc, 4) if decision.champion_auc else "none"
        ),
        "champion_version": serving or "none",
    }
    if serving:
        metadata["mlflow_champion"] = dg.MetadataValue.url(registry.version_url(serving))
    return dg.Output(serving, metadata=metadata)
