"""External systems behind Dagster resources: the data contract, the customer data source, the
prediction store and the model registry."""

import time
from abc import abstractmethod
from typing import Literal

import dagster as dg
import httpx
import pandas as pd
from pydantic import Field
from sqlalchemy import Engine

from churnops.contract import (
    Contract,
    ContractError,
    ContractFileError,
    configured_contract,
)
from churnops.data.production import with_production_records
from churnops.data.sources import read_customer_file
from churnops.data.synthetic import DriftSpec, generate_customers, is_demo_contract
from churnops.model.economics import Campaign, build_campaign
from churnops.model.gate import GateRules
from churnops.model.recipes import RecipeChoice
from churnops.model.slices import SliceSpec
from churnops.model.training import CandidatePolicy
from churnops.monitoring import prediction_store
from churnops.monitoring.drift import DriftThresholds
from churnops.monitoring.guard import GuardPolicy
from churnops.monitoring.live_gate import LiveGateRules
from registry.interface import ModelRegistry
from registry.memory import InMemoryModelRegistry
from registry.mlflow_registry import MlflowModelRegistry
from registry.promotion import Approval

NO_DRIFT = DriftSpec()


class DataContractResource(dg.ConfigurableResource):
    """The data contract (CHURNOPS_CONTRACT) every asset, check and sensor takes its column
    names, kinds and target from."""

    path: str | None = Field(
        description="Contract file (YAML/TOML); None means the shipped Telco contract."
    )

    def load(self) -> Contract:
        """The validated contract; a bad file fails the step without retries (retrying cannot
        fix it), naming the file and key."""
        try:
            return configured_contract(self.path)
        except ContractFileError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from exc


class PredictionStore(dg.ConfigurableResource):
    """Where the Bento service logs predictions and feedback labels (a SQLAlchemy URL)."""

    url: str = Field(
        description="SQLAlchemy URL, e.g. sqlite:///.churn/predictions.db; may hold a password, "
        "so it is passed as `EnvVar` when it comes from the environment."
    )

    def engine(self) -> Engine:
        return prediction_store.connect(self.url)


class PredictionLogPolicy(dg.ConfigurableResource):
    """Where each day of the prediction log is exported and how long the store keeps it
    (CHURNOPS_PREDICTION_EXPORT_OUTPUT, CHURNOPS_PREDICTION_RETENTION_DAYS)."""

    output: str = Field(description="Folder or object-store URL of the daily Parquet files.")
    retention_days: int = Field(ge=0, description="Days the store keeps; 0 keeps every day.")


class CustomerSource(dg.ConfigurableResource):
    """A user's CSV/Parquet file in the contract's schema, or the seeded synthetic generator
    (the Telco demo), plus production predictions whose labels have arrived (so retraining
    sees recent customers)."""

    path: str | None = Field(description="CSV/Parquet file; None means synthetic data.")
    synthetic_rows: int = Field(gt=0, description="Rows to generate when path is unset.")
    seed: int = Field(description="Generator seed.")
    prediction_store: PredictionStore | None = Field(
        description="Store of labelled production predictions; None trains on the base data only."
    )
    window_days: float = Field(
        ge=0, description="Recent days of labelled predictions to read; 0 reads them all."
    )
    # Launchpad-only demo knobs, not settings: their default is the generator's reference
    # population, so a normal run never shifts anything.
    tenure_scale: float = Field(
        NO_DRIFT.tenure_scale, gt=0, description="Drift knob: scales tenure."
    )
    monthly_charges_shift: float = Field(
        NO_DRIFT.monthly_charges_shift, description="Drift knob: shifts monthly charges."
    )

    @property
    def name(self) -> str:
        return self.path or "synthetic"

    def load(self, contract: Contract) -> pd.DataFrame:
        """Raw records under `contract`; `ContractError` when there is no file and the
        contract is not the synthetic generator's."""
        return with_production_records(
            self.load_base(contract), self.production_records(contract), contract
        )

    def load_base(self, contract: Contract) -> pd.DataFrame:
        """The file's (or the generator's) records alone, without production ones."""
        if self.path:
            base = read_customer_file(self.path)
        elif not is_demo_contract(contract):
            raise ContractError(
                f"no data file: CHURNOPS_DATA_PATH is unset, and the synthetic generator only "
                f"makes the Telco demo data, not {contract.dataset!r} (CHURNOPS_CONTRACT); "
                "point CHURNOPS_DATA_PATH at your CSV or Parquet file"
            )
        else:
            drift = DriftSpec(
                tenure_scale=self.tenure_scale, monthly_charges_shift=self.monthly_charges_shift
            )
            base = generate_customers(self.synthetic_rows, seed=self.seed, drift=drift)
        return base

    def production_records(self, contract: Contract) -> pd.DataFrame:
        if self.prediction_store is None:
            return pd.DataFrame()
        since = time.time() - self.window_days * 86_400 if self.window_days else None
        return prediction_store.labelled_records(
            self.prediction_store.engine(), contract, since_ts=since
        )


class ModelRegistryResource(dg.ConfigurableResource):
    """The model registry behind the assets and the drift sensor; a subclass picks the backend,
    so the wiring never depends on which one runs."""

    @abstractmethod
    def open(self) -> ModelRegistry: ...


class MlflowRegistryResource(ModelRegistryResource):
    """The MLflow server (tracking + model registry), addressed by URL only."""

    tracking_uri: str = Field(description="MLflow server URL, e.g. http://127.0.0.1:5000.")
    model_name: str = Field(description="Registered model name.")
    experiment: str = Field(description="Experiment for training runs.")

    def open(self) -> ModelRegistry:
        return MlflowModelRegistry(self.tracking_uri, self.model_name, self.experiment)


# Dagster builds a resource anew from its config for every step and sensor tick: the in-memory
# registries live here, one per namespace, so all of them (and the test) see the same state.
_MEMORY_REGISTRIES: dict[str, InMemoryModelRegistry] = {}


def memory_registry(namespace: str, model_name: str, experiment: str) -> InMemoryModelRegistry:
    """The in-memory registry of `namespace`, created on first use."""
    return _MEMORY_REGISTRIES.setdefault(namespace, InMemoryModelRegistry(model_name, experiment))


class InMemoryRegistryResource(ModelRegistryResource):
    """A registry in this process's memory (tests, no server); shared by `namespace`."""

    namespace: str = Field(description="Resources with the same namespace share one registry.")
    model_name: str = Field(description="Registered model name.")
    experiment: str = Field(description="Experiment for training runs.")

    def open(self) -> ModelRegistry:
        return memory_registry(self.namespace, self.model_name, self.experiment)


class TrainingPolicy(dg.ConfigurableResource):
    """Deployment-wide training policy (from CHURNOPS_* settings)."""

    recipe: RecipeChoice = Field(description="`auto` (chosen by CV) or a pinned recipe.")
    holdout_fraction: float = Field(gt=0, lt=1, description="Holdout share.")
    seed: int = Field(description="Split, CV, tuning and training seed.")
    cv_folds: int = Field(ge=2, description="Stratified CV folds on the training split.")
    tuning_budget_seconds: float = Field(ge=0, description="Optuna time budget; 0 = no tuning.")
    tuning_max_trials: int | None = Field(ge=1, description="Trial cap (None: budget only).")

    def candidate_policy(self) -> CandidatePolicy:
        return CandidatePolicy(
            recipe=self.recipe,
            folds=self.cv_folds,
            seed=self.seed,
            tuning_budget_seconds=self.tuning_budget_seconds,
            tuning_max_trials=self.tuning_max_trials,
        )


LiveGateMode = Literal["off", "on"]


class GatePolicy(dg.ConfigurableResource):
    """What a challenger must show to replace the champion (from CHURNOPS_GATE_* settings)."""

    min_auc: float = Field(ge=0, le=1, description="Minimum ROC AUC for any champion.")
    margin: float = Field(ge=0, description="AUC gain the challenger must show significantly.")
    alpha: float = Field(gt=0, lt=0.5, description="Significance level of the DeLong test.")
    slices: list[str] | None = Field(
        description="Slices judged: `column` or `column:e0,e1,...`; None means the "
        "contract's own `slices`."
    )
    slice_min_rows: int = Field(ge=1, description="Holdout rows a slice needs to be judged.")
    slice_tolerance: float = Field(ge=0, description="AUC a challenger may lose on a slice.")
    approval: Approval = Field(
        description="`auto` promotes a winner; `manual` leaves it `pending-approval`."
    )
    live_gate: LiveGateMode = Field(
        description="`on`: a winner with a champion waits as @challenger for the live gate."
    )

    def rules(self, contract: Contract) -> GateRules:
        """The rules for challengers trained on `contract` (its slices unless set here); a
        slice on a column the contract lacks fails without retries."""
        slices = tuple(
            SliceSpec.parse(text)
            for text in (contract.slices if self.slices is None else self.slices)
        )
        unknown = [spec.text() for spec in slices if spec.column not in contract.feature_names]
        if unknown:
            raise dg.Failure(
                f"CHURNOPS_GATE_SLICES: slice(s) {unknown} name no feature of contract "
                f"{contract.dataset!r} (features: {', '.join(contract.feature_names)})",
                allow_retries=False,
            )
        return GateRules(
            min_auc=self.min_auc,
            margin=self.margin,
            alpha=self.alpha,
            slices=slices,
            slice_min_rows=self.slice_min_rows,
            slice_tolerance=self.slice_tolerance,
        )


class LiveGatePolicy(dg.ConfigurableResource):
    """The gate on live evidence (CHURNOPS_LIVE_GATE_*): when a shadowed challenger is promoted
    or rejected on the paired comparison with the champion."""

    mode: LiveGateMode = Field(description="`on`: the live gate sensor decides; `off`: skips.")
    min_labelled: int = Field(ge=4, description="Labelled paired requests needed to decide.")
    margin: float = Field(ge=0, description="Live AUC the challenger may lose.")
    alpha: float = Field(gt=0, lt=0.5, description="The interval is the 1 - 2*alpha one.")
    window_days: float = Field(gt=0, description="Days of paired requests read.")
    approval: Approval = Field(
        description="`auto` promotes a passing challenger; `manual` leaves it pending-approval."
    )

    @property
    def enabled(self) -> bool:
        return self.mode == "on"

    def rules(self) -> LiveGateRules:
        return LiveGateRules(self.min_labelled, self.margin, self.alpha)


class MonitorPolicy(dg.ConfigurableResource):
    """When traffic counts as drifted or degraded enough to retrain (from CHURNOPS_* settings)."""

    min_rows: int = Field(gt=0, description="New predictions needed per window.")
    psi: float = Field(gt=0, description="Per-feature PSI threshold.")
    p_value: float = Field(gt=0, lt=1, description="KS / chi-square p-value threshold.")
    drift_share: float = Field(gt=0, le=1, description="Drifted-feature share to retrain.")
    score_psi: float = Field(gt=0, description="PSI of the predicted probabilities to retrain.")
    min_labels: int = Field(gt=0, description="Labels a model version needs for its live AUC.")
    min_live_auc: float = Field(ge=0, le=1, description="Live AUC below which to retrain.")
    retrain_timeout_seconds: float = Field(
        gt=0, description="A retraining run in flight longer than this stops holding windows."
    )

    def thresholds(self) -> DriftThresholds:
        return DriftThresholds(
            psi=self.psi,
            p_value=self.p_value,
            drift_share=self.drift_share,
            score_psi=self.score_psi,
            min_rows=self.min_rows,
            min_labels=self.min_labels,
            min_live_auc=self.min_live_auc,
        )


class CampaignPolicy(dg.ConfigurableResource):
    """The retention campaign's economics (CHURNOPS_CAMPAIGN_*): evaluation picks the
    threshold of maximum expected profit under them; unset, the threshold is 0.5."""

    contact_cost: float | None = Field(ge=0, description="Cost of contacting one customer.")
    retained_value: float | None = Field(gt=0, description="Value of keeping a churner.")
    success_rate: float | None = Field(gt=0, le=1, description="Share of churners retained.")
    offer_cost: float | None = Field(ge=0, description="Offer cost per accepting customer.")

    def campaign(self) -> Campaign | None:
        try:
            return build_campaign(
                contact_cost=self.contact_cost,
                retained_value=self.retained_value,
                success_rate=self.success_rate,
                offer_cost=self.offer_cost,
            )
        except ValueError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from exc


class ScoringTarget(dg.ConfigurableResource):
    """What `churn_scores` scores and where the files go (CHURNOPS_SCORING_*)."""

    path: str | None = Field(
        description="Customer base to score (CSV/Parquet); None means the training source."
    )
    output: str = Field(description="Folder or object-store URL the dated score files go to.")
    explain: bool = Field(description="Write the top 3 reason codes of every customer.")

    def location(self, partition: str) -> str:
        """One file per scoring date: re-scoring a date replaces its file."""
        return f"{self.output.rstrip('/')}/date={partition}/scores.parquet"


class ServingEndpoint(dg.ConfigurableResource):
    """The prediction API's `GET /model`: which version it serves and which it refused (a
    champion it could not load or score), read by the champion guard over HTTP."""

    status_url: str = Field(description="URL of the Bento service's GET /model.")

    def model_status(self, timeout: float = 5.0) -> dict[str, object]:
        response = httpx.get(self.status_url, timeout=timeout)
        response.raise_for_status()
        return response.json()


class ChampionGuardPolicy(dg.ConfigurableResource):
    """When a newly moved champion is reverted by itself (CHURNOPS_REVERT_* settings)."""

    watch_seconds: float = Field(ge=0, description="Watch window after a move; 0 = off.")
    error_budget: float | None = Field(
        gt=0, le=1, description="Live error rate that reverts; None = serving refusal only."
    )
    min_labels: int = Field(ge=1, description="Labels needed before the error rate counts.")

    def policy(self) -> GuardPolicy:
        return GuardPolicy(self.watch_seconds, self.error_budget, self.min_labels)
