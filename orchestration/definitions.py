"""The Dagster code location: assembles assets, checks, jobs and resources from settings."""

import dagster as dg

from churnops.settings import Settings
from orchestration.assets import deployment, features, ingest, training
from orchestration.assets.checks import CLEAN_CUSTOMER_CHECKS
from orchestration.jobs import train_and_promote
from orchestration.resources import CustomerSource, MlflowRegistry, TrainingPolicy


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "customer_source": CustomerSource(
            path=settings.data_path, synthetic_rows=settings.synthetic_rows, seed=settings.seed
        ),
        "mlflow_registry": MlflowRegistry(
            tracking_uri=settings.tracking_uri,
            model_name=settings.model_name,
            experiment=settings.experiment,
        ),
        "training_policy": TrainingPolicy(
            recipe=settings.recipe,
            holdout_fraction=settings.holdout_fraction,
            seed=settings.seed,
            min_auc=settings.gate_min_auc,
            margin=settings.gate_margin,
        ),
    }


defs = dg.Definitions(
    assets=dg.load_assets_from_modules([ingest, features, training, deployment]),
    asset_checks=CLEAN_CUSTOMER_CHECKS,
    jobs=[train_and_promote],
    resources=build_resources(Settings()),
    # Embedded default: every op of a run in one process (no per-step interpreter start-up).
    executor=dg.in_process_executor,
)
