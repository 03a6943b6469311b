"""External systems behind Dagster resources: the customer data source and the MLflow server."""

import dagster as dg
import pandas as pd
from pydantic import Field

from churnops.recipe import Recipe
from churnops.sources import read_customer_file
from churnops.synthetic import DriftSpec, generate_customers
from registry.client import ChurnRegistry


class CustomerSource(dg.ConfigurableResource):
    """A user's CSV/Parquet file in the Telco schema, or the seeded synthetic generator."""

    path: str | None = Field(None, description="CSV/Parquet file; unset means synthetic data.")
    synthetic_rows: int = Field(50_000, gt=0, description="Rows to generate when path is unset.")
    seed: int = Field(42, description="Generator seed.")
    tenure_scale: float = Field(1.0, gt=0, description="Drift knob: scales tenure.")
    monthly_charges_shift: float = Field(0.0, description="Drift knob: shifts monthly charges.")

    @property
    def name(self) -> str:
        return self.path or "synthetic"

    def load(self) -> pd.DataFrame:
        if self.path:
            return read_customer_file(self.path)
        drift = DriftSpec(
            tenure_scale=self.tenure_scale, monthly_charges_shift=self.monthly_charges_shift
        )
        return generate_customers(self.synthetic_rows, seed=self.seed, drift=drift)


class MlflowRegistry(dg.ConfigurableResource):
    """The MLflow server (tracking + model registry), addressed by URL only."""

    tracking_uri: str = Field(description="MLflow server URL, e.g. http://127.0.0.1:5000.")
    model_name: str = Field("churn", description="Registered model name.")
    experiment: str = Field("churn-training", description="Experiment for training runs.")

    def registry(self) -> ChurnRegistry:
        return ChurnRegistry(self.tracking_uri, self.model_name)


class TrainingPolicy(dg.ConfigurableResource):
    """Deployment-wide training and promotion policy (from CHURNOPS_* settings)."""

    recipe: Recipe = Field("hist_gradient_boosting", description="Model recipe.")
    holdout_fraction: float = Field(0.2, gt=0, lt=1, description="Holdout share.")
    seed: int = Field(42, description="Split and training seed.")
    min_auc: float = Field(0.70, ge=0, le=1, description="Minimum ROC AUC for any champion.")
    margin: float = Field(0.002, ge=0, description="AUC gain needed to replace the champion.")
