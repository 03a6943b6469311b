"""Choose and train a candidate model, log it to the model registry, and evaluate it on the
holdout. The choosing (CV selection, tuning, calibration) is `churnops.model.training`; the
assets here wire it to the registry and to Dagster's metadata."""

import json
from dataclasses import dataclass

import dagster as dg
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from sklearn.pipeline import Pipeline

from churnops.data.fingerprint import frame_fingerprint
from churnops.data.split import Split
from churnops.model import recipes, scoring
from churnops.model.economics import expected_maximum_profit, profit_curve, profit_decision
from churnops.model.evaluation import evaluate_scores
from churnops.model.importance import field_importance
from churnops.model.training import CandidateReport, fit_candidate
from churnops.monitoring.drift import reference_sample
from orchestration.config import TrainConfig
from orchestration.metadata import figure_markdown, platform_asset
from orchestration.plots import (
    evaluation_figures,
    importance_figure,
    profit_figure,
    reliability_figure,
)
from orchestration.provenance import git_revision
from orchestration.resources import (
    CampaignPolicy,
    DataContractResource,
    ModelRegistryResource,
    TrainingPolicy,
)
from registry.interface import LoggedRun, ModelRegistry

TRAINING = "training"
# Artifacts of the candidate's run that say how it was chosen.
CV_TABLE = "selection/cv_table"  # .md and .json
TRIALS_TABLE = "tuning/trials"  # .md and .json
STUDY_JOURNAL = "tuning/study.journal"  # Optuna journal: tuning.load_study reads it back
STUDY_INFO = "tuning/study.json"
CALIBRATION_FOLDER = "calibration"  # report.json and reliability.png
DECISION_ARTIFACT = "evaluation/decision.json"  # the served threshold and why


@dataclass(frozen=True)
class TrainedCandidate:
    pipeline: Pipeline
    recipe: str
    run: LoggedRun
    train_fingerprint: str
    report: CandidateReport  # CV table, tuning trials, calibration (for the gate and model card)


def _markdown(rows: list[dict[str, object]]) -> str:
    return pd.DataFrame(rows).to_markdown(index=False)


def log_how_chosen(
    registry: ModelRegistry, run_id: str, report: CandidateReport, reliability: Figure
) -> None:
    """CV metrics, the CV table, the tuning study and trials, and the calibration decision
    with its reliability plot, as metrics and artifacts of the candidate's run."""
    registry.log_metrics_and_figures(
        run_id, report.metrics(), {"reliability.png": reliability}, folder=CALIBRATION_FOLDER
    )
    rows = report.selection.rows()
    registry.log_text(run_id, _markdown(rows), f"{CV_TABLE}.md")
    registry.log_text(run_id, json.dumps(rows, indent=2), f"{CV_TABLE}.json")
    registry.log_text(
        run_id,
        json.dumps(report.calibration.facts(), indent=2),
        f"{CALIBRATION_FOLDER}/report.json",
    )
    if report.tuning is not None:
        trials = report.tuning.rows()
        registry.log_text(run_id, _markdown(trials), f"{TRIALS_TABLE}.md")
        registry.log_text(run_id, json.dumps(trials, indent=2, default=str), f"{TRIALS_TABLE}.json")
        registry.log_text(run_id, report.tuning.journal, STUDY_JOURNAL)
        study = {
            "study_name": report.tuning.study_name,
            "recipe": report.tuning.recipe,
            "trials": len(trials),
            "seconds": round(report.tuning.seconds, 2),
            "best_params": report.params.model_dump(),
        }
        registry.log_text(run_id, json.dumps(study, indent=2), STUDY_INFO)


def how_chosen_metadata(report: CandidateReport, reliability: Figure) -> dict[str, object]:
    """The same story for the Dagster materialization page."""
    briers = [
        {"probabilities": name, "cv_brier": round(value, 5)}
        for name, value in report.calibration.brier.items()
    ]
    metadata: dict[str, object] = {
        "cv_table": dg.MetadataValue.md(_markdown(report.selection.rows())),
        "cv_roc_auc": round(report.cv.roc_auc_mean, 4),
        "calibration": report.calibration.method,
        "calibration_brier": dg.MetadataValue.md(_markdown(briers)),
        "reliability": figure_markdown(reliability, "reliability.png"),
        "params": dg.MetadataValue.json(report.params.model_dump()),
    }
    if report.tuning is not None:
        metadata["tuning_trials"] = dg.MetadataValue.md(_markdown(report.tuning.rows()))
        metadata["tuning_trial_count"] = len(report.tuning.trials)
    return metadata


@platform_asset(TRAINING, "sklearn", "mlflow", external=True)
def churn_candidate(
    context: dg.AssetExecutionContext,
    config: TrainConfig,
    customer_split: Split,
    model_registry: ModelRegistryResource,
    training_policy: TrainingPolicy,
    contract: DataContractResource,
) -> dg.Output[TrainedCandidate]:
    """An sklearn Pipeline (preprocessing + estimator, calibrated when CV says it helps) chosen
    by cross-validation on the training split, tuned if budgeted, and logged as an MLflow run
    with the data contract it was trained on."""
    data_contract = contract.load()
    policy = training_policy.candidate_policy()
    context.log.info(
        f"choosing among {', '.join(recipes.candidates(policy.recipe))} by {policy.folds}-fold "
        f"CV on {len(customer_split.train):,} rows"
    )
    report = fit_candidate(
        customer_split.train,
        policy,
        contract=data_contract,
        params_for=config.params_for,
        log=context.log.info,
    )
    params = recipes.run_params(report.params, training_policy.seed)
    split_summary = customer_split.summary()
    registry = model_registry.open()
    logged = registry.log_candidate(
        run_name=f"{report.recipe}-{context.run.run_id[:8]}",
        model=report.pipeline,
        params={
            "recipe": report.recipe,
            "recipe_choice": policy.recipe,
            "cv_folds": policy.folds,
            "tuning_budget_seconds": policy.tuning_budget_seconds,
            "calibration": report.calibration.method,
            **params,
            **split_summary,
        },
        tags={
            "dagster.run_id": context.run.run_id,
            "dagster.asset": context.asset_key.to_user_string(),
            "mlflow.source.git.commit": git_revision(),
            "data.fingerprint": split_summary["train_fingerprint"],
            "data.holdout_fingerprint": split_summary["holdout_fingerprint"],
        },
        contract=data_contract,
        datasets={"training": customer_split.train, "holdout": customer_split.holdout},
    )
    reliability = reliability_figure(report.calibration)
    log_how_chosen(registry, logged.run_id, report, reliability)
    chosen_metadata = how_chosen_metadata(report, reliability)
    plt.close(reliability)
    candidate = TrainedCandidate(
        pipeline=report.pipeline,
        recipe=report.recipe,
        run=logged,
        train_fingerprint=frame_fingerprint(customer_split.train),
        report=report,
    )
    url = registry.run_url(logged)
    return dg.Output(
        candidate,
        metadata={
            "recipe": report.recipe,
            **chosen_metadata,
            "mlflow_run_id": logged.run_id,
            "mlflow_run": dg.MetadataValue.url(url),
            "model_uri": logged.model_uri,
            "train_rows": len(customer_split.train),
            "contract": data_contract.dataset,
            "contract_fingerprint": data_contract.fingerprint,
        },
    )


@platform_asset(TRAINING, "sklearn", "mlflow", external=True)
def candidate_evaluation(
    churn_candidate: TrainedCandidate,
    customer_split: Split,
    model_registry: ModelRegistryResource,
    training_policy: TrainingPolicy,
    campaign_policy: CampaignPolicy,
    contract: DataContractResource,
) -> dg.Output[dict[str, float]]:
    """Holdout ROC AUC, PR AUC, F1, Brier and plots, logged to the candidate's MLflow run,
    the decision threshold it will serve with (maximum expected profit under the campaign
    economics, else 0.5), plus the monitoring reference (holdout features and scores)."""
    data_contract = contract.load()
    holdout = customer_split.holdout
    scores = scoring.churn_probability(churn_candidate.pipeline, holdout, data_contract)
    evaluation = evaluate_scores(scoring.labels(holdout, data_contract), scores)
    figures = evaluation_figures(evaluation)
    importance = field_importance(
        churn_candidate.pipeline,
        scoring.features(holdout, data_contract),
        evaluation.y_true,
        training_policy.seed,
    )
    figures["feature_importance.png"] = importance_figure(importance)
    campaign = campaign_policy.campaign()
    decision = profit_decision(evaluation.y_true, scores, campaign)
    metrics = {**evaluation.metrics, "decision_threshold": decision.threshold}
    if campaign is not None:
        curve = profit_curve(evaluation.y_true, scores, campaign)
        figures["profit_curve.png"] = profit_figure(curve, decision)
        metrics["expected_profit_per_customer"] = float(decision.expected_profit_per_customer)
        metrics["targeted_share"] = float(decision.targeted_share)
        metrics["emp_per_customer"] = expected_maximum_profit(evaluation.y_true, scores, campaign)
    plots = {name.removesuffix(".png"): figure_markdown(fig, name) for name, fig in figures.items()}
    registry = model_registry.open()
    run_id = churn_candidate.run.run_id
    registry.log_metrics_and_figures(run_id, metrics, figures)
    registry.log_text(run_id, json.dumps(decision.facts(), indent=2), DECISION_ARTIFACT)
    for figure in figures.values():
        plt.close(figure)
    reference = reference_sample(holdout, scores, training_policy.seed, contract=data_contract)
    registry.log_reference(run_id, reference)
    url = registry.run_url(churn_candidate.run)
    return dg.Output(
        metrics,
        metadata={
            **{k: round(v, 4) for k, v in metrics.items()},
            **plots,
            "decision": decision.basis,
            "top_features": dg.MetadataValue.md(
                importance.head(5).round(4).to_frame().to_markdown()
            ),
            "mlflow_run": dg.MetadataValue.url(url),
        },
    )
