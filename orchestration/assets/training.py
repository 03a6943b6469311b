"""Train a candidate model, log it to MLflow, and evaluate it on the holdout."""

from dataclasses import dataclass

import dagster as dg
from pydantic import Field
from sklearn.pipeline import Pipeline

from churnops.data.fingerprint import frame_fingerprint
from churnops.data.split import Split
from churnops.model import recipe
from churnops.model.evaluation import evaluate_scores
from churnops.model.importance import field_importance
from churnops.monitoring.drift import reference_sample
from orchestration.metadata import figure_markdown, platform_asset
from orchestration.plots import evaluation_figures, importance_figure
from orchestration.provenance import git_revision
from orchestration.resources import MlflowRegistry, TrainingPolicy
from registry.tracking import log_candidate, log_metrics_and_figures, log_reference, run_url

TRAINING = "training"


class TrainConfig(dg.Config):
    """Per-run hyperparameters (the recipe itself is deployment policy)."""

    max_iter: int = Field(300, gt=0, description="Boosting iterations (upper bound).")
    learning_rate: float = Field(0.08, gt=0, description="Boosting learning rate.")
    max_leaf_nodes: int = Field(31, gt=1, description="Leaves per tree.")
    l2_regularization: float = Field(1.0, ge=0, description="Boosting L2 penalty.")
    c: float = Field(1.0, gt=0, description="Inverse regularization for logistic regression.")


@dataclass(frozen=True)
class TrainedCandidate:
    pipeline: Pipeline
    recipe: str
    run_id: str
    experiment_id: str
    model_uri: str
    model_id: str
    train_fingerprint: str


@platform_asset(TRAINING, "sklearn", "mlflow", external=True)
def churn_candidate(
    context: dg.AssetExecutionContext,
    config: TrainConfig,
    customer_split: Split,
    mlflow_registry: MlflowRegistry,
    training_policy: TrainingPolicy,
) -> dg.Output[TrainedCandidate]:
    """An sklearn Pipeline (preprocessing + estimator) trained and logged as an MLflow run."""
    params = {**config.model_dump(), "seed": training_policy.seed}
    context.log.info(f"training {training_policy.recipe} on {len(customer_split.train):,} rows")
    pipeline = recipe.train(customer_split.train, training_policy.recipe, **params)
    split_summary = customer_split.summary()
    logged = log_candidate(
        mlflow_registry.tracking_uri,
        mlflow_registry.experiment,
        run_name=f"{training_policy.recipe}-{context.run.run_id[:8]}",
        model=pipeline,
        params={"recipe": training_policy.recipe, **params, **split_summary},
        tags={
            "dagster.run_id": context.run.run_id,
            "dagster.asset": context.asset_key.to_user_string(),
            "mlflow.source.git.commit": git_revision(),
            "data.fingerprint": split_summary["train_fingerprint"],
            "data.holdout_fingerprint": split_summary["holdout_fingerprint"],
        },
        datasets={"training": customer_split.train, "holdout": customer_split.holdout},
    )
    candidate = TrainedCandidate(
        pipeline=pipeline,
        recipe=training_policy.recipe,
        run_id=logged.run_id,
        experiment_id=logged.experiment_id,
        model_uri=logged.model_uri,
        model_id=logged.model_id,
        train_fingerprint=frame_fingerprint(customer_split.train),
    )
    url = run_url(mlflow_registry.tracking_uri, logged.experiment_id, logged.run_id)
    return dg.Output(
        candidate,
        metadata={
            "recipe": training_policy.recipe,
            "mlflow_run_id": logged.run_id,
            "mlflow_run": dg.MetadataValue.url(url),
            "model_uri": logged.model_uri,
            "train_rows": len(customer_split.train),
        },
    )


@platform_asset(TRAINING, "sklearn", "mlflow", external=True)
def candidate_evaluation(
    churn_candidate: TrainedCandidate,
    customer_split: Split,
    mlflow_registry: MlflowRegistry,
    training_policy: TrainingPolicy,
) -> dg.Output[dict[str, float]]:
    """Holdout ROC AUC, PR AUC, F1, Brier and plots, logged to the candidate's MLflow run,
    plus the monitoring reference (holdout features and scores)."""
    holdout = customer_split.holdout
    scores = recipe.churn_probability(churn_candidate.pipeline, holdout)
    evaluation = evaluate_scores(recipe.labels(holdout), scores)
    figures = evaluation_figures(evaluation)
    importance = field_importance(
        churn_candidate.pipeline,
        recipe.features(holdout),
        evaluation.y_true,
        training_policy.seed,
    )
    figures["feature_importance.png"] = importance_figure(importance)
    plots = {name.removesuffix(".png"): figure_markdown(fig, name) for name, fig in figures.items()}
    log_metrics_and_figures(
        mlflow_registry.tracking_uri, churn_candidate.run_id, evaluation.metrics, figures
    )
    log_reference(
        mlflow_registry.tracking_uri,
        churn_candidate.run_id,
        reference_sample(holdout, scores, training_policy.seed),
    )
    url = run_url(
        mlflow_registry.tracking_uri, churn_candidate.experiment_id, churn_candidate.run_id
    )
    return dg.Output(
        evaluation.metrics,
        metadata={
            **{k: round(v, 4) for k, v in evaluation.metrics.items()},
            **plots,
            "top_features": dg.MetadataValue.md(
                importance.head(5).round(4).to_frame().to_markdown()
            ),
            "mlflow_run": dg.MetadataValue.url(url),
        },
    )
