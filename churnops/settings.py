"""Every knob of the platform, read from `CHURNOPS_*` environment variables (see README table)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from churnops.model.economics import Campaign, build_campaign
from churnops.model.slices import SliceSpec

ENV_PREFIX = "CHURNOPS_"


def _recipe_name(name: str) -> str:
    """`auto` or a registered recipe. The registry is imported only to check a name that was
    set: it loads scikit-learn, which the serving supervisor reading Settings must not pay for."""
    if name == "auto":
        return name
    from churnops.model.recipes import check_choice

    return check_choice(name)


RecipeName = Annotated[str, AfterValidator(_recipe_name)]


class Settings(BaseSettings):
    """Loopback, single-machine defaults; every address can be pointed elsewhere."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    home: Path = Field(Path(".churn"), description="State folder (MLflow db, Dagster home, logs).")
    host: str = Field("127.0.0.1", description="Interface every service binds to.")
    mlflow_port: int = Field(5000, description="MLflow server port (tracking + registry + UI).")
    dagster_port: int = Field(3000, description="Dagster webserver port (UI).")
    bento_port: int = Field(3001, description="BentoML prediction API port.")
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow server URL; default `http://HOST:MLFLOW_PORT`."
    )
    mlflow_backend_store_uri: str | None = Field(
        None, description="SQLAlchemy URL of MLflow's store; default SQLite in HOME."
    )
    mlflow_artifacts_destination: str | None = Field(
        None, description="Artifact store URI served by MLflow; default a folder in HOME."
    )
    mlflow_workers: int = Field(1, description="MLflow server worker processes.")
    mlflow_auth: bool = Field(
        True,
        description="MLflow's basic-auth app: clients log in with MLFLOW_TRACKING_USERNAME/"
        "PASSWORD; `churnops up` generates the accounts and keeps them in HOME.",
    )
    mlflow_auth_database_uri: str | None = Field(
        None, description="SQLAlchemy URL of MLflow's users database; default SQLite in HOME."
    )
    mlflow_training_password: SecretStr | None = Field(
        None,
        description="Password `churnops mlflow-accounts` gives `churnops-training` (registers "
        "versions, moves aliases).",
    )
    mlflow_serving_password: SecretStr | None = Field(
        None,
        description="Password `churnops mlflow-accounts` gives `churnops-serving` (read only).",
    )
    model_name: str = Field("churn", description="Registered model name.")
    experiment: str = Field("churn-training", description="MLflow experiment for training runs.")
    contract: Path | None = Field(
        None, description="Data contract file (YAML/TOML); unset = the shipped Telco contract."
    )
    data_path: str | None = Field(
        None,
        description="CSV/Parquet file under the data contract; unset = synthetic Telco data.",
    )
    synthetic_rows: int = Field(50_000, description="Rows generated when DATA_PATH is unset.")
    seed: int = Field(42, description="Seed for data generation, split and training.")
    # Candidate selection, issue 14 part 1: CV, tuning budget (calibration is decided by CV).
    recipe: RecipeName = Field(
        "auto",
        description="`auto` (the best by cross-validation) or a pinned recipe's name "
        '(README "How models are chosen and promoted").',
    )
    cv_folds: int = Field(
        3, ge=2, description="Stratified folds for recipe selection, tuning and calibration."
    )
    tuning_budget_seconds: float = Field(
        0.0, ge=0, description="Optuna time budget for tuning the chosen recipe; 0 = no tuning."
    )
    tuning_max_trials: int | None = Field(
        None,
        ge=1,
        description="Also stop tuning after this many trials (a fixed count is reproducible).",
    )
    holdout_fraction: float = Field(0.2, description="Share of rows held out for evaluation.")
    gate_min_auc: float = Field(0.70, description="Minimum holdout ROC AUC for any champion.")
    gate_margin: float = Field(
        0.002,
        description="AUC gain over the champion the challenger must show significantly "
        "(one-sided DeLong test on the same holdout).",
    )
    # Promotion gate, issue 14 part 2: significance level and slice rules.
    gate_alpha: float = Field(
        0.05,
        gt=0,
        lt=0.5,
        description="Significance level of the gate's test; the reported interval is the "
        "two-sided 1 - 2*ALPHA one.",
    )
    gate_slices: list[str] | None = Field(
        None,
        description="Slices judged by the gate (JSON list): `column` = one per value, "
        "`column:e0,e1,...` = numeric bands; unset = the data contract's `slices`.",
    )
    gate_slice_min_rows: int = Field(
        200, ge=1, description="Holdout rows a slice needs before the gate judges it."
    )
    gate_slice_tolerance: float = Field(
        0.02, ge=0, description="AUC a challenger may lose to the champion on any judged slice."
    )
    gate_approval: Literal["auto", "manual"] = Field(
        "auto",
        description="`auto`: a challenger that passes the gate becomes champion; `manual`: it is "
        "tagged `pending-approval` until `churnops approve VERSION`.",
    )
    # Campaign economics, issue 15: the served decision threshold maximises expected profit.
    campaign_contact_cost: float | None = Field(
        None, ge=0, description="Cost of contacting one customer; unset = threshold 0.5."
    )
    campaign_retained_value: float | None = Field(
        None, gt=0, description="Value of keeping a customer who would have churned."
    )
    campaign_success_rate: float | None = Field(
        None, gt=0, le=1, description="Share of contacted would-be churners the offer retains."
    )
    campaign_offer_cost: float | None = Field(
        None, ge=0, description="Cost of the offer per customer who accepts it (default 0)."
    )
    # Batch scoring, issue 15: the weekly retention list.
    scoring_path: str | None = Field(
        None,
        description="Customer base `churn_scores` scores (CSV/Parquet); unset = the training "
        "data source.",
    )
    scoring_output: str | None = Field(
        None,
        description="Folder or object-store URL (`s3://...`) for score files; default "
        "`HOME/scores`.",
    )
    scoring_cron: str = Field(
        "0 6 * * 1", description="When the `score_customers` schedule runs (cron, UTC)."
    )
    scoring_explain: bool = Field(
        True, description="`churn_scores` writes the top 3 reason codes of every customer."
    )
    model_uri: str | None = Field(
        None, description="Serve this pinned model URI instead of following `@champion`."
    )
    alias_poll_seconds: float = Field(
        10.0, description="How often serving re-checks the `@champion` alias."
    )
    prediction_store_url: str | None = Field(
        None, description="SQLAlchemy URL of the prediction store; default SQLite in HOME."
    )
    prediction_logging: bool = Field(True, description="Log every served prediction.")
    serving_workers: int = Field(
        1, ge=1, description="Bento worker processes (each batches its own requests)."
    )
    serving_lean_route: bool = Field(
        True,
        description="Answer plainly valid /predict and /predict_batch requests on the lean "
        "route (same answers, without BentoML's per-record objects); anything else, and all "
        "of them when false, on BentoML's API.",
    )
    rollout: Literal["off", "shadow", "canary"] = Field(
        "off",
        description="`shadow`: serving also scores every request with `@challenger` and logs "
        "its score beside the champion's answer; `canary`: a sticky share of customers is "
        "answered by `@challenger`; `off`: only `@champion`.",
    )
    canary_share: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Share of customers (a stable hash of the id) `canary` answers with "
        "`@challenger`.",
    )
    api_token: SecretStr | None = Field(
        None,
        description="Bearer token every API route needs when set (probes, docs, metrics and "
        "`/model` stay open).",
    )
    api_tokens: SecretStr | None = Field(
        None,
        description="Scoped API tokens, comma separated `scope:token` (scope `predict`, "
        "`feedback` or `all`); several may be valid at once, for rotation.",
    )
    api_tokens_file: Path | None = Field(
        None,
        description="File of `scope:token` lines, re-read when it changes: rotate tokens "
        "without a restart.",
    )
    max_request_bytes: int = Field(
        2_000_000, description="Largest accepted request body (larger gets HTTP 413)."
    )
    prediction_journal: Path | None = Field(
        None,
        description="Folder of the on-disk prediction journal (answered predictions before the "
        "store has them); default `journal` in HOME.",
    )
    journal_max_bytes: int = Field(
        1 << 30,
        gt=0,
        description="Disk the journal may hold while the store is away; past it /predict "
        "answers 503.",
    )
    retrain_with_production_labels: bool = Field(
        True, description="Add labelled production predictions to the training data."
    )
    retrain_window_days: float = Field(
        90.0,
        ge=0,
        description="Retraining reads the labelled predictions of this many recent days "
        "(0 reads the whole history).",
    )
    prediction_retention_days: int = Field(
        0,
        ge=0,
        description="PostgreSQL store: day partitions older than this are dropped by the daily "
        "export job, and shadow scores older than this are deleted on every store (0 keeps "
        "every day).",
    )
    prediction_export_output: str | None = Field(
        None,
        description="Folder or object-store URL the daily Parquet exports of the prediction "
        "log go to; default `prediction_exports` in HOME.",
    )
    monitor_interval_seconds: int = Field(
        30, description="How often the drift sensor evaluates new traffic."
    )
    monitor_min_rows: int = Field(
        1000, description="New predictions needed before a window is evaluated."
    )
    drift_psi: float = Field(0.2, description="PSI at which a feature counts as drifted.")
    drift_p_value: float = Field(0.01, description="KS / chi-square p-value for drift.")
    drift_share: float = Field(
        0.10, description="Share of drifted features that triggers retraining."
    )
    drift_score_psi: float = Field(
        0.2, description="PSI of the predicted probabilities that (with the p-value) retrains."
    )
    drift_min_labels: int = Field(
        200, description="Feedback labels a model version needs before its live AUC counts."
    )
    drift_min_live_auc: float = Field(
        0.70, description="Live ROC AUC (from feedback labels) that triggers retraining."
    )
    revert_watch_seconds: float = Field(
        3600.0,
        ge=0,
        description="How long after a move the champion guard watches the new champion and "
        "reverts it by itself; 0 = no automatic revert.",
    )
    revert_error_budget: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Live error rate (wrong answers among labelled predictions) that reverts a "
        "watched champion; unset = only serving's refusal reverts.",
    )
    revert_min_labels: int = Field(
        200,
        ge=1,
        description="Labelled predictions a watched champion needs before its error rate counts.",
    )
    revert_interval_seconds: int = Field(
        15, ge=1, description="How often the champion guard sensor checks the champion."
    )
    # Live gate, issue 18 part 4: promote a shadowed challenger on paired live evidence.
    live_gate: Literal["off", "on"] = Field(
        "off",
        description="`on`: a challenger that passes the offline gate waits as `@challenger` "
        "(served in shadow) until the live gate promotes or rejects it on paired live "
        "evidence; `off`: the offline gate alone decides.",
    )
    live_gate_min_labelled: int = Field(
        300,
        ge=4,
        description="Labelled paired requests (champion's answer and challenger's shadow "
        "score of the same request) the live gate needs before it decides.",
    )
    live_gate_margin: float = Field(
        0.01,
        ge=0,
        description="Live ROC AUC the challenger may lose to the champion: promoted when the "
        "lower bound of the paired difference's 1 - 2*GATE_ALPHA interval is >= -MARGIN.",
    )
    live_comparison_days: float = Field(
        14.0,
        gt=0,
        description="The live comparison reads the paired labelled requests of this many "
        "recent days (and none before the champion took the alias).",
    )
    serving_url: str | None = Field(
        None,
        description="Prediction API the champion guard asks `GET /model`; default "
        "`http://HOST:BENTO_PORT`.",
    )
    retrain_timeout_seconds: float = Field(
        3600.0,
        gt=0,
        description="A retraining run in flight longer than this no longer holds back the "
        "drift sensor (and `churnops status --check` calls it stuck).",
    )
    stop_grace_seconds: float = Field(
        30.0,
        ge=0,
        description="How long stopping `churnops up` lets runs in flight finish (the rest are "
        "retried on the next start).",
    )
    executor: Literal["in_process", "docker", "k8s"] = Field(
        "in_process",
        description="Where a run's ops execute: `in_process`, `docker` (a container per op) "
        "or `k8s` (a Kubernetes Job per op).",
    )
    executor_image: str | None = Field(
        None, description="Image for op containers/Jobs; default the code location's image."
    )
    docker_network: str | None = Field(
        None, description="Docker network op containers join (to reach MLflow, Postgres)."
    )
    docker_volumes: list[str] = Field(
        [], description="Volumes (`name:/path`, JSON list) mounted into every op container."
    )
    # Scale out, issue 19 part 1: asset values in an object store, no shared volume.
    asset_storage_url: str | None = Field(
        None,
        description="`s3://BUCKET/PREFIX` where asset values pass from op to op under the "
        "`docker` and `k8s` executors (required there); credentials from the AWS SDK's "
        "`AWS_*` variables.",
    )
    object_store_endpoint_url: str | None = Field(
        None,
        description="Endpoint of an S3-compatible store (MinIO, moto, ...) holding "
        "ASSET_STORAGE_URL; unset = the AWS SDK's default.",
    )

    @field_validator("contract", mode="before")
    @classmethod
    def _blank_contract_is_unset(cls, path: object) -> object:
        """`CHURNOPS_CONTRACT=` (blank) means the default contract, not the current folder."""
        return None if isinstance(path, str) and not path.strip() else path

    @field_validator("gate_slices")
    @classmethod
    def _slices_parse(cls, slices: list[str] | None) -> list[str] | None:
        """A malformed slice fails at start-up, not at the end of a training run (whether its
        column is a feature is checked against the contract when the gate rules are built)."""
        for text in slices or ():
            SliceSpec.parse(text)
        return slices

    @field_validator("api_token")
    @classmethod
    def _token_not_blank(cls, token: SecretStr | None) -> SecretStr | None:
        """A blank token would silently turn auth off; unset the variable to mean that."""
        if token is not None and not token.get_secret_value().strip():
            raise ValueError("CHURNOPS_API_TOKEN is set but blank; unset it to turn auth off")
        return token

    @model_validator(mode="after")
    def _campaign_complete(self) -> Settings:
        """A partly set campaign fails at start-up: a forgotten number would move the
        threshold customers are contacted at."""
        self.campaign()
        return self

    def campaign(self) -> Campaign | None:
        return build_campaign(
            contact_cost=self.campaign_contact_cost,
            retained_value=self.campaign_retained_value,
            success_rate=self.campaign_success_rate,
            offer_cost=self.campaign_offer_cost,
        )

    @property
    def state_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"http://{self.host}:{self.mlflow_port}"

    @property
    def backend_store_uri(self) -> str:
        return (
            self.mlflow_backend_store_uri or f"sqlite:///{self.state_dir / 'mlflow' / 'mlflow.db'}"
        )

    @property
    def artifacts_destination(self) -> str:
        return self.mlflow_artifacts_destination or str(self.state_dir / "mlflow" / "artifacts")

    @property
    def auth_database_uri(self) -> str:
        """MLflow's users database, beside its SQLite store."""
        return self.mlflow_auth_database_uri or f"sqlite:///{self.state_dir / 'mlflow' / 'auth.db'}"

    @property
    def prediction_store(self) -> str:
        return self.prediction_store_url or f"sqlite:///{self.state_dir / 'predictions.db'}"

    @property
    def journal_dir(self) -> Path:
        return self.prediction_journal or self.state_dir / "journal"

    @property
    def prediction_exports_location(self) -> str:
        return self.prediction_export_output or str(self.state_dir / "prediction_exports")

    @property
    def scores_location(self) -> str:
        return self.scoring_output or str(self.state_dir / "scores")

    @property
    def dagster_home(self) -> Path:
        return self.state_dir / "dagster"

    @property
    def bento_url(self) -> str:
        return f"http://{self.host}:{self.bento_port}"

    @property
    def serving_status_url(self) -> str:
        return f"{(self.serving_url or self.bento_url).rstrip('/')}/model"

    @property
    def dagster_url(self) -> str:
        return f"http://{self.host}:{self.dagster_port}"
