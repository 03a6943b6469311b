"""Settings are the one source of every default: each resource field is a setting, no resource
has a default of its own, the drift chart draws the configured thresholds, and URLs that may
hold a password reach Dagster as `EnvVar`s so the UI never shows them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from churnops.contract import DEFAULT_CONTRACT_PATH, telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.synthetic import generate_customers
from churnops.model.slices import SliceSpec
from churnops.monitoring.drift import SCORE_COLUMN, DriftThresholds, build_report
from churnops.settings import Settings
from orchestration.definitions import build_resources, env_backed
from orchestration.plots import drift_figure

pytestmark = pytest.mark.unit

# (resource key, resource field) -> the Settings attribute it is built from.
FROM_SETTINGS = {
    ("contract", "path"): "contract",
    ("customer_source", "path"): "data_path",
    ("customer_source", "synthetic_rows"): "synthetic_rows",
    ("customer_source", "seed"): "seed",
    ("prediction_store", "url"): "prediction_store",
    ("model_registry", "tracking_uri"): "tracking_uri",
    ("model_registry", "model_name"): "model_name",
    ("model_registry", "experiment"): "experiment",
    ("training_policy", "recipe"): "recipe",
    ("training_policy", "holdout_fraction"): "holdout_fraction",
    ("training_policy", "seed"): "seed",
    ("training_policy", "cv_folds"): "cv_folds",
    ("training_policy", "tuning_budget_seconds"): "tuning_budget_seconds",
    ("training_policy", "tuning_max_trials"): "tuning_max_trials",
    ("gate_policy", "min_auc"): "gate_min_auc",
    ("gate_policy", "margin"): "gate_margin",
    ("gate_policy", "alpha"): "gate_alpha",
    ("gate_policy", "slices"): "gate_slices",
    ("gate_policy", "slice_min_rows"): "gate_slice_min_rows",
    ("gate_policy", "slice_tolerance"): "gate_slice_tolerance",
    ("gate_policy", "approval"): "gate_approval",
    ("gate_policy", "live_gate"): "live_gate",
    ("live_gate_policy", "mode"): "live_gate",
    ("live_gate_policy", "min_labelled"): "live_gate_min_labelled",
    ("live_gate_policy", "margin"): "live_gate_margin",
    ("live_gate_policy", "alpha"): "gate_alpha",
    ("live_gate_policy", "window_days"): "live_comparison_days",
    ("live_gate_policy", "approval"): "gate_approval",
    ("monitor_policy", "min_rows"): "monitor_min_rows",
    ("monitor_policy", "psi"): "drift_psi",
    ("monitor_policy", "p_value"): "drift_p_value",
    ("monitor_policy", "drift_share"): "drift_share",
    ("monitor_policy", "score_psi"): "drift_score_psi",
    ("monitor_policy", "min_labels"): "drift_min_labels",
    ("monitor_policy", "min_live_auc"): "drift_min_live_auc",
    ("monitor_policy", "retrain_timeout_seconds"): "retrain_timeout_seconds",
    ("campaign_policy", "contact_cost"): "campaign_contact_cost",
    ("campaign_policy", "retained_value"): "campaign_retained_value",
    ("campaign_policy", "success_rate"): "campaign_success_rate",
    ("campaign_policy", "offer_cost"): "campaign_offer_cost",
    ("scoring_target", "path"): "scoring_path",
    ("scoring_target", "output"): "scores_location",
    ("scoring_target", "explain"): "scoring_explain",
    ("serving", "status_url"): "serving_status_url",
    ("guard_policy", "watch_seconds"): "revert_watch_seconds",
    ("guard_policy", "error_budget"): "revert_error_budget",
    ("guard_policy", "min_labels"): "revert_min_labels",
    ("customer_source", "window_days"): "retrain_window_days",
    ("prediction_log_policy", "output"): "prediction_exports_location",
    ("prediction_log_policy", "retention_days"): "prediction_retention_days",
}
# The customer source reads the prediction store only when this setting says so.
NESTED = {("customer_source", "prediction_store"): "retrain_with_production_labels"}
# Launchpad-only demo knobs (no setting): the one place resources may keep a default.
LAUNCHPAD_KNOBS = {
    ("customer_source", "tenure_scale"),
    ("customer_source", "monthly_charges_shift"),
}

# A value different from its default for every setting the resources read.
NON_DEFAULT = {
    "contract": DEFAULT_CONTRACT_PATH,
    "data_path": "/data/telco.parquet",
    "synthetic_rows": 1234,
    "seed": 7,
    "prediction_store_url": "sqlite:////srv/elsewhere/predictions.db",
    "mlflow_tracking_uri": "http://mlflow.internal:5500",
    "model_name": "churn-eu",
    "experiment": "churn-eu-training",
    "recipe": "logistic_regression",
    "holdout_fraction": 0.3,
    "cv_folds": 5,
    "tuning_budget_seconds": 30.0,
    "tuning_max_trials": 40,
    "gate_min_auc": 0.65,
    "gate_margin": 0.01,
    "gate_alpha": 0.1,
    "gate_slices": ["PaymentMethod", "MonthlyCharges:50,100"],
    "gate_slice_min_rows": 500,
    "gate_slice_tolerance": 0.05,
    "monitor_min_rows": 321,
    "drift_psi": 0.3,
    "drift_p_value": 0.05,
    "drift_share": 0.2,
    "drift_score_psi": 0.4,
    "drift_min_labels": 50,
    "drift_min_live_auc": 0.6,
    "retrain_timeout_seconds": 1800.0,
    "retrain_with_production_labels": False,
    "campaign_contact_cost": 12.0,
    "campaign_retained_value": 300.0,
    "campaign_success_rate": 0.25,
    "campaign_offer_cost": 5.0,
    "scoring_path": "/data/base.parquet",
    "scoring_output": "s3://bucket/scores",
    "scoring_explain": False,
    "gate_approval": "manual",
    "live_gate": "on",
    "live_gate_min_labelled": 40,
    "live_gate_margin": 0.03,
    "live_comparison_days": 3.0,
    "serving_url": "http://bento.internal:3001",
    "revert_watch_seconds": 60.0,
    "revert_error_budget": 0.3,
    "revert_min_labels": 50,
    "retrain_window_days": 30.0,
    "prediction_retention_days": 60,
    "prediction_export_output": "s3://bucket/predictions",
}
# URLs carrying a password the Dagster UI must not show.
POSTGRES_URL = "postgresql+psycopg2://churnops:s3cret@db:5432/predictions"
MLFLOW_URL = "http://user:s3cret@mlflow:5000"


@pytest.fixture(autouse=True)
def _no_platform_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start from defaults whatever the developer's shell exports."""
    for name in os.environ:
        if name.startswith("CHURNOPS_"):
            monkeypatch.delenv(name)


def _fields(resource: dg.ConfigurableResource) -> set[str]:
    return set(type(resource).model_fields)


def test_every_setting_the_resources_read_is_set_to_a_non_default_value() -> None:
    for name, value in NON_DEFAULT.items():
        assert Settings.model_fields[name].default != value, name


def test_every_resource_field_is_mapped_to_a_setting() -> None:
    resources = build_resources(Settings(**NON_DEFAULT))
    mapped = {*FROM_SETTINGS, *NESTED, *LAUNCHPAD_KNOBS}
    assert {key for key, _ in mapped} == set(resources)
    for key, resource in resources.items():
        assert _fields(resource) == {field for k, field in mapped if k == key}, key


def test_each_resource_field_equals_its_setting() -> None:
    settings = Settings(**NON_DEFAULT)
    resources = build_resources(settings)
    for (key, field), setting in FROM_SETTINGS.items():
        expected = getattr(settings, setting)
        expected = str(expected) if isinstance(expected, Path) else expected  # config is text
        assert getattr(resources[key], field) == expected, (key, field)
    assert resources["customer_source"].prediction_store is None
    labelled = Settings(**{**NON_DEFAULT, "retrain_with_production_labels": True})
    with_labels = build_resources(labelled)
    assert with_labels["customer_source"].prediction_store is with_labels["prediction_store"]


def test_no_resource_field_has_a_default_of_its_own() -> None:
    resources = build_resources(Settings())
    for key, field in [*FROM_SETTINGS, *NESTED]:
        assert type(resources[key]).model_fields[field].is_required(), (key, field)


def test_monitor_policy_thresholds_are_the_settings_thresholds() -> None:
    settings = Settings(**NON_DEFAULT)
    policy = build_resources(settings)["monitor_policy"]
    assert policy.thresholds() == DriftThresholds.from_settings(settings)


def test_gate_policy_rules_parse_the_slice_settings() -> None:
    rules = build_resources(Settings(**NON_DEFAULT))["gate_policy"].rules(telco_contract())
    assert rules.slices == (SliceSpec("PaymentMethod"), SliceSpec("MonthlyCharges", (50, 100)))
    assert (rules.min_auc, rules.margin, rules.alpha) == (0.65, 0.01, 0.1)
    assert (rules.slice_min_rows, rules.slice_tolerance) == (500, 0.05)


def test_without_slice_settings_the_gate_judges_the_contracts_slices() -> None:
    contract = telco_contract()
    rules = build_resources(Settings())["gate_policy"].rules(contract)
    assert Settings().gate_slices is None
    assert [spec.text() for spec in rules.slices] == list(contract.slices)


def test_the_contract_resource_loads_the_configured_file(tmp_path: Path) -> None:
    resources = build_resources(Settings())
    assert resources["contract"].path is None
    assert resources["contract"].load() == telco_contract()
    broken = tmp_path / "contract.yaml"
    broken.write_text("version: 1\ndataset: x\ntarget: {name: y}\n", encoding="utf-8")
    resource = build_resources(Settings(contract=broken))["contract"]
    with pytest.raises(dg.Failure, match=r"contract\.yaml: invalid contract") as failure:
        resource.load()
    assert "features" in str(failure.value) and not failure.value.allow_retries


def _traffic(rows: int, seed: int):
    contract = telco_contract()
    frame = clean_customers(generate_customers(rows, seed=seed), "synthetic", contract).frame
    frame[SCORE_COLUMN] = np.random.default_rng(seed).uniform(0, 1, rows)
    frame["model_version"] = "1"
    frame[contract.target.name] = None
    return frame


def _chart_lines(thresholds: DriftThresholds) -> tuple[float, float]:
    """(feature line x, score tick x) of the drift chart for a report judged by `thresholds`."""
    report = build_report(_traffic(600, 1), _traffic(400, 2), thresholds, telco_contract())
    figure = drift_figure(report)
    (axes,) = figure.axes
    (feature_line,) = axes.lines
    (score_tick,) = axes.collections[-1].get_segments()
    feature_xs, score_xs = set(feature_line.get_xdata()), set(score_tick[:, 0])
    assert len(feature_xs) == len(score_xs) == 1  # both are vertical
    return feature_xs.pop(), score_xs.pop()


def test_drift_psi_variables_move_the_chart_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    def lines() -> tuple[float, float]:
        return _chart_lines(build_resources(Settings())["monitor_policy"].thresholds())

    default = Settings()
    assert lines() == (default.drift_psi, default.drift_score_psi)
    monkeypatch.setenv("CHURNOPS_DRIFT_PSI", "0.35")
    monkeypatch.setenv("CHURNOPS_DRIFT_SCORE_PSI", "0.15")
    assert lines() == (0.35, 0.15)


def test_urls_set_in_the_environment_become_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNOPS_PREDICTION_STORE_URL", POSTGRES_URL)
    monkeypatch.setenv("CHURNOPS_MLFLOW_TRACKING_URI", MLFLOW_URL)
    resources = build_resources(Settings(retrain_with_production_labels=True))
    url, uri = resources["prediction_store"].url, resources["model_registry"].tracking_uri
    assert isinstance(url, dg.EnvVar) and url.env_var_name == "CHURNOPS_PREDICTION_STORE_URL"
    assert isinstance(uri, dg.EnvVar) and uri.env_var_name == "CHURNOPS_MLFLOW_TRACKING_URI"
    for key in ("prediction_store", "model_registry", "customer_source"):
        # What the Dagster UI lists as the resource's configured values.
        shown = resources[key].get_resource_definition().config_schema.default_value_as_json_str
        assert "s3cret" not in shown, key
    shown = resources["prediction_store"].get_resource_definition().config_schema
    assert json.loads(shown.default_value_as_json_str)["url"] == {
        "env": "CHURNOPS_PREDICTION_STORE_URL"
    }


def test_keyword_and_computed_urls_stay_plain_values(monkeypatch: pytest.MonkeyPatch) -> None:
    computed = build_resources(Settings())["prediction_store"].url
    assert not isinstance(computed, dg.EnvVar)
    assert computed == Settings().prediction_store  # the SQLite default in HOME, not a variable
    monkeypatch.setenv("CHURNOPS_PREDICTION_STORE_URL", POSTGRES_URL)
    passed = build_resources(Settings(prediction_store_url="sqlite://"))["prediction_store"].url
    assert not isinstance(passed, dg.EnvVar)
    assert passed == "sqlite://"  # the keyword wins over the environment, as in Settings


def test_env_backed_is_chosen_only_when_the_variable_set_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not isinstance(env_backed("mlflow_tracking_uri", "http://a:5000"), dg.EnvVar)
    monkeypatch.setenv("CHURNOPS_MLFLOW_TRACKING_URI", "http://a:5000")
    assert isinstance(env_backed("mlflow_tracking_uri", "http://a:5000"), dg.EnvVar)
    assert not isinstance(env_backed("mlflow_tracking_uri", "http://b:5000"), dg.EnvVar)


def test_env_var_resources_resolve_to_the_variable_value_at_run_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHURNOPS_PREDICTION_STORE_URL", POSTGRES_URL)
    monkeypatch.setenv("CHURNOPS_MLFLOW_TRACKING_URI", MLFLOW_URL)
    resources = build_resources(Settings(retrain_with_production_labels=True))
    seen: dict[str, str] = {}

    @dg.asset(required_resource_keys={"prediction_store", "customer_source", "model_registry"})
    def probe(context) -> None:  # annotation left out: this module's are strings
        seen["store"] = context.resources.prediction_store.url
        seen["nested"] = context.resources.customer_source.prediction_store.url
        seen["mlflow"] = context.resources.model_registry.tracking_uri

    assert dg.materialize([probe], resources=resources).success
    assert seen == {"store": POSTGRES_URL, "nested": POSTGRES_URL, "mlflow": MLFLOW_URL}
