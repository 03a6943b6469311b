"""Register the candidate as `@challenger`, then let the gate decide who holds `@champion`."""

import dagster as dg

from churnops.data.split import Split
from churnops.model import recipe
from churnops.model.evaluation import evaluate_scores
from churnops.model.gate import decide_promotion
from orchestration.assets.training import TrainedCandidate
from orchestration.metadata import platform_asset
from orchestration.provenance import git_revision
from orchestration.resources import MlflowRegistry, TrainingPolicy
from registry.tracking import load_model, version_url

DEPLOYMENT = "deployment"


@platform_asset(DEPLOYMENT, "mlflow", external=True)
def challenger_version(
    context: dg.AssetExecutionContext,
    churn_candidate: TrainedCandidate,
    candidate_evaluation: dict[str, float],
    mlflow_registry: MlflowRegistry,
) -> dg.Output[str]:
    """A new registered model version with lineage tags, aliased `@challenger`."""
    registry = mlflow_registry.registry()
    registry.ensure_model(
        "Customer churn classifier (sklearn Pipeline on raw Telco fields). "
        "`@champion` is served; `@challenger` is the latest gated candidate."
    )
    version = registry.register(
        churn_candidate.model_uri,
        churn_candidate.model_id,
        churn_candidate.run_id,
        tags={
            "dagster.run_id": context.run.run_id,
            "data.fingerprint": churn_candidate.train_fingerprint,
            "git.revision": git_revision(),
            "recipe": churn_candidate.recipe,
            "holdout.roc_auc": f"{candidate_evaluation['roc_auc']:.4f}",
        },
    )
    registry.set_challenger(version)
    url = version_url(mlflow_registry.tracking_uri, mlflow_registry.model_name, version)
    return dg.Output(
        version,
        metadata={
            "model": mlflow_registry.model_name,
            "version": version,
            "mlflow_model_version": dg.MetadataValue.url(url),
        },
    )


@platform_asset(DEPLOYMENT, "mlflow", external=True)
def champion_version(
    challenger_version: str,
    churn_candidate: TrainedCandidate,
    candidate_evaluation: dict[str, float],
    customer_split: Split,
    mlflow_registry: MlflowRegistry,
    training_policy: TrainingPolicy,
) -> dg.Output[str]:
    """The promotion gate: re-score the current champion on this holdout, promote if beaten."""
    registry = mlflow_registry.registry()
    champion = registry.champion()
    champion_auc = None
    if champion is not None and champion.version != challenger_version:
        model = load_model(
            mlflow_registry.tracking_uri, f"models:/{mlflow_registry.model_name}/{champion.version}"
        )
        holdout = customer_split.holdout
        scores = recipe.churn_probability(model, holdout)
        champion_auc = evaluate_scores(recipe.labels(holdout), scores).metrics["roc_auc"]
    decision = decide_promotion(
        candidate_evaluation["roc_auc"],
        champion_auc,
        min_auc=training_policy.min_auc,
        margin=training_policy.margin,
    )
    registry.tag_version(
        challenger_version,
        {
            "gate.decision": "promoted" if decision.promote else "rejected",
            "gate.reason": decision.reason,
            "gate.champion_version": champion.version if champion else "none",
        },
    )
    if decision.promote:
        registry.promote(challenger_version, decision.reason)
    serving = challenger_version if decision.promote else (champion.version if champion else "")
    metadata: dict[str, object] = {
        "promoted": decision.promote,
        "reason": decision.reason,
        "challenger_version": challenger_version,
        "challenger_auc": round(decision.challenger_auc, 4),
        "champion_auc_same_holdout": round(champion_auc, 4) if champion_auc else "none",
        "champion_version": serving or "none",
    }
    if serving:
        url = version_url(mlflow_registry.tracking_uri, mlflow_registry.model_name, serving)
        metadata["mlflow_champion"] = dg.MetadataValue.url(url)
    return dg.Output(serving, metadata=metadata)
