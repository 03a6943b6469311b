"""Train a candidate model, log it to the model registry, and evaluate it on the holdout."""

from dataclasses import dataclass

import dagster as dg
from matplotlib import pyplot as plt
from sklearn.pipeline import Pipeline

from churnops.data.fingerprint import frame_fingerprint
from churnops.data.split import Split
from churnops.model import recipes, scoring
from churnops.model.evaluation import evaluate_scores
from churnops.model.importance import field_importance
from churnops.monitoring.drift import reference_sample
from orchestration.config import TrainConfig
from orchestration.metadata import figure_markdown, platform_asset
from orchestration.plots import evaluation_figures, importance_figure
from orchestration.provenance import git_revision
from orchestration.resources import ModelRegistryResource, TrainingPolicy
from registry.interface import LoggedRun

TRAINING = "training"


@dataclass(frozen=True)
class TrainedCandidate:
    pipeline: Pipeline
    recipe: str
    run: LoggedRun
    train_fingerprint: str


@platform_asset(TRAINING, "sklearn", "mlflow", external=True)
def churn_candidate(
    context: dg.AssetExecutionContext,
    config: TrainConfig,
    customer_split: Split,
    model_registry: ModelRegistryResource,
    training_policy: TrainingPolicy,
) -> dg.Output[TrainedCandidate]:
    """An sklearn Pipeline (preprocessing + estimator) trained and logged as an MLflow run."""
    hyperparameters = config.params_for(training_policy.recipe)
    params = recipes.run_params(hyperparameters, training_policy.seed)
    context.log.info(f"training {training_policy.recipe} on {len(customer_split.train):,} rows")
    pipeline = recipes.train(
        customer_split.train, training_policy.recipe, hyperparameters, seed=training_policy.seed
    )
    split_summary = customer_split.summary()
    registry = model_registry.open()
    logged = registry.log_candidate(
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
        run=logged,
        train_fingerprint=frame_fingerprint(customer_split.train),
    )
    url = registry.run_url(logged)
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
    model_registry: ModelRegistryResource,
    training_policy: TrainingPolicy,
) -> dg.Output[dict[str, float]]:
    """Holdout ROC AUC, PR AUC, F1, Brier and plots, logged to the candidate's MLflow run,
    plus the monitoring reference (holdout features and scores)."""
    holdout = customer_split.holdout
    scores = scoring.churn_probability(churn_candidate.pipeline, holdout)
    evaluation = evaluate_scores(scoring.labels(holdout), scores)
    figures = evaluation_figures(evaluation)
    importance = field_importance(
        churn_candidate.pipeline,
        scoring.features(holdout),
        evaluation.y_true,
        training_policy.seed,
    )
    figures["feature_importance.png"] = importance_figure(importance)
    plots = {name.removesuffix(".png"): figure_markdown(fig, name) for name, fig in figures.items()}
    registry = model_registry.open()
    run_id = churn_candidate.run.run_id
    registry.log_metrics_and_figures(run_id, evaluation.metrics, figures)
    for figure in figures.values():
        plt.close(figure)
    registry.log_reference(run_id, reference_sample(holdout, scores, training_policy.seed))
    url = registry.run_url(churn_candidate.run)
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
