"""External systems behind Dagster resources: the customer data source and the MLflow server."""

import dagster as dg
import pandas as pd
from pydantic import Field
from sqlalchemy import Engine

from churnops.data.sources import read_customer_file
from churnops.data.synthetic import DriftSpec, generate_customers
from churnops.model.recipe import Recipe
from churnops.monitoring import prediction_store
from churnops.monitoring.drift import DriftThresholds
from registry.client import ChurnRegistry


class PredictionStore(dg.ConfigurableResource):
    """Where the Bento service logs predictions and feedback labels (a SQLAlchemy URL)."""

    url: str = Field(description="SQLAlchemy URL, e.g. sqlite:///.churn/predictions.db.")

    def engine(self) -> Engine:
        return prediction_store.connect(self.url)


class CustomerSource(dg.ConfigurableResource):
    """A user's CSV/Parquet file in the Telco schema, or the seeded synthetic generator, plus
    production predictions whose labels have arrived (so retraining sees recent customers)."""

    path: str | None = Field(None, description="CSV/Parquet file; unset means synthetic data.")
    synthetic_rows: int = Field(50_000, gt=0, description="Rows to generate when path is unset.")
    seed: int = Field(42, description="Generator seed.")
    tenure_scale: float = Field(1.0, gt=0, description="Drift knob: scales tenure.")
    monthly_charges_shift: float = Field(0.0, description="Drift knob: shifts monthly charges.")
    prediction_store: PredictionStore | None = None

    @property
    def name(self) -> str:
        return self.path or "synthetic"

    def load(self) -> pd.DataFrame:
        if self.path:
            base = read_customer_file(self.path)
        else:
            drift = DriftSpec(
                tenure_scale=self.tenure_scale, monthly_charges_shift=self.monthly_charges_shift
            )
            base = generate_customers(self.synthetic_rows, seed=self.seed, drift=drift)
        production = self.production_records()
        if production.empty:
            return base
        return pd.concat([base.astype(object), production.astype(object)], ignore_index=True)

    def production_records(self) -> pd.DataFrame:
        if self.prediction_store is None:
            return pd.DataFrame()
        return prediction_store.labelled_records(self.prediction_store.engine())


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


class MonitorPolicy(dg.ConfigurableResource):
    """When traffic counts as drifted or degraded enough to retrain."""

    min_rows: int = Field(1000, gt=0, description="New predictions needed per window.")
    psi: float = Field(0.2, gt=0, description="Per-feature PSI threshold.")
    p_value: float = Field(0.01, gt=0, lt=1, description="KS / chi-square p-value threshold.")
    drift_share: float = Field(0.10, gt=0, le=1, description="Drifted-feature share to retrain.")
    min_live_auc: float = Field(0.70, ge=0, le=1, description="Live AUC below which to retrain.")

    def thresholds(self) -> DriftThresholds:
        return DriftThresholds(
            psi=self.psi,
            p_value=self.p_value,
            drift_share=self.drift_share,
            min_rows=self.min_rows,
            min_live_auc=self.min_live_auc,
        )
