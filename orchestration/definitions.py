"""The Dagster code location: assembles assets, checks, jobs, sensors and resources."""

import os

import dagster as dg

from churnops.settings import ENV_PREFIX, Settings
from orchestration.approval import approve_challenger
from orchestration.assets import (
    deployment,
    features,
    ingest,
    monitoring,
    prediction_log,
    scoring,
    training,
)
from orchestration.assets.checks import CLEAN_CUSTOMER_CHECKS
from orchestration.executors import select_executor
from orchestration.guard import build_guard_sensor, revert_champion
from orchestration.io_managers import select_io_manager
from orchestration.jobs import retrain_on_drift, score_customers, train_and_promote
from orchestration.live_gate import build_live_gate_sensor, live_gate
from orchestration.resources import (
    CampaignPolicy,
    ChampionGuardPolicy,
    CustomerSource,
    DataContractResource,
    GatePolicy,
    LiveGatePolicy,
    MlflowRegistryResource,
    MonitorPolicy,
    PredictionLogPolicy,
    PredictionStore,
    ScoringTarget,
    ServingEndpoint,
    TrainingPolicy,
)
from orchestration.schedules import build_scoring_schedule, weekly_retrain
from orchestration.sensors import build_drift_sensor, build_scoring_sensor


def env_backed(setting: str, value: str) -> str:
    """`EnvVar` for a value that may hold a password (database or MLflow URL) when the
    `CHURNOPS_*` variable is what set it, so the Dagster UI shows the variable's name rather
    than the value; the value itself when it was computed or passed to `Settings` directly."""
    name = f"{ENV_PREFIX}{setting.upper()}"
    return dg.EnvVar(name) if os.environ.get(name) == value else value


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """Every resource value comes from `settings`; the resources have no defaults of their own.
    The `io_manager` is set only where ops run apart (docker, k8s); else Dagster's default."""
    store = PredictionStore(url=env_backed("prediction_store_url", settings.prediction_store))
    io_manager = select_io_manager(settings)
    return ({"io_manager": io_manager} if io_manager is not None else {}) | {
        "contract": DataContractResource(
            path=str(settings.contract) if settings.contract is not None else None
        ),
        "customer_source": CustomerSource(
            path=settings.data_path,
            synthetic_rows=settings.synthetic_rows,
            seed=settings.seed,
            prediction_store=store if settings.retrain_with_production_labels else None,
            window_days=settings.retrain_window_days,
        ),
        "model_registry": MlflowRegistryResource(
            tracking_uri=env_backed("mlflow_tracking_uri", settings.tracking_uri),
            model_name=settings.model_name,
            experiment=settings.experiment,
        ),
        "training_policy": TrainingPolicy(
            recipe=settings.recipe,
            holdout_fraction=settings.holdout_fraction,
            seed=settings.seed,
            cv_folds=settings.cv_folds,
            tuning_budget_seconds=settings.tuning_budget_seconds,
            tuning_max_trials=settings.tuning_max_trials,
        ),
        "gate_policy": GatePolicy(
            min_auc=settings.gate_min_auc,
            margin=settings.gate_margin,
            alpha=settings.gate_alpha,
            slices=settings.gate_slices,
            slice_min_rows=settings.gate_slice_min_rows,
            slice_tolerance=settings.gate_slice_tolerance,
            approval=settings.gate_approval,
            live_gate=settings.live_gate,
        ),
        "live_gate_policy": LiveGatePolicy(
            mode=settings.live_gate,
            min_labelled=settings.live_gate_min_labelled,
            margin=settings.live_gate_margin,
            alpha=settings.gate_alpha,
            window_days=settings.live_comparison_days,
            approval=settings.gate_approval,
        ),
        "campaign_policy": CampaignPolicy(
            contact_cost=settings.campaign_contact_cost,
            retained_value=settings.campaign_retained_value,
            success_rate=settings.campaign_success_rate,
            offer_cost=settings.campaign_offer_cost,
        ),
        "scoring_target": ScoringTarget(
            path=settings.scoring_path,
            output=settings.scores_location,
            explain=settings.scoring_explain,
        ),
        "prediction_store": store,
        "prediction_log_policy": PredictionLogPolicy(
            output=settings.prediction_exports_location,
            retention_days=settings.prediction_retention_days,
        ),
        "monitor_policy": MonitorPolicy(
            min_rows=settings.monitor_min_rows,
            psi=settings.drift_psi,
            p_value=settings.drift_p_value,
            drift_share=settings.drift_share,
            score_psi=settings.drift_score_psi,
            min_labels=settings.drift_min_labels,
            min_live_auc=settings.drift_min_live_auc,
            retrain_timeout_seconds=settings.retrain_timeout_seconds,
        ),
        "serving": ServingEndpoint(status_url=settings.serving_status_url),
        "guard_policy": ChampionGuardPolicy(
            watch_seconds=settings.revert_watch_seconds,
            error_budget=settings.revert_error_budget,
            min_labels=settings.revert_min_labels,
        ),
    }


settings = Settings()

defs = dg.Definitions(
    assets=dg.load_assets_from_modules(
        [ingest, features, training, deployment, monitoring, scoring, prediction_log]
    ),
    asset_checks=CLEAN_CUSTOMER_CHECKS,
    jobs=[
        train_and_promote,
        retrain_on_drift,
        score_customers,
        approve_challenger,
        revert_champion,
        live_gate,
        prediction_log.export_prediction_log,
    ],
    schedules=[
        weekly_retrain,
        build_scoring_schedule(settings.scoring_cron),
        prediction_log.daily_prediction_export,
    ],
    sensors=[
        build_drift_sensor(retrain_on_drift, settings.monitor_interval_seconds),
        build_scoring_sensor(score_customers, settings.monitor_interval_seconds),
        build_guard_sensor(revert_champion, settings.revert_interval_seconds),
        build_live_gate_sensor(live_gate, settings.monitor_interval_seconds),
    ],
    resources=build_resources(settings),
    executor=select_executor(settings, os.environ),
)
