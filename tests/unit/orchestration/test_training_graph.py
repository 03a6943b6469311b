"""The whole training graph (every asset and check of the training groups) materialized against
the in-memory registry: what `train_and_promote` does, in seconds and without a server."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from churnops.contract import dump_contract, load_contract, telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.synthetic import generate_customers
from churnops.monitoring import prediction_store
from churnops.settings import Settings
from orchestration.definitions import build_resources, defs
from orchestration.jobs import TRAINING_GROUPS
from orchestration.resources import InMemoryRegistryResource, memory_registry
from registry.interface import (
    CHALLENGER,
    CHAMPION,
    CONTRACT_ARTIFACT,
    CONTRACT_DATASET_TAG,
    CONTRACT_FINGERPRINT_TAG,
    MONITORING_EXPERIMENT,
)
from registry.memory import InMemoryModelRegistry

pytestmark = pytest.mark.unit

MODEL, EXPERIMENT = "churn-graph", "graph-training"
TELCO = telco_contract()


def _materialize(namespace: str, **overrides: object) -> dg.ExecuteInProcessResult:
    chosen = {
        "synthetic_rows": 3000,
        "recipe": "logistic_regression",
        "prediction_store_url": "sqlite://",
        **overrides,
    }
    settings = Settings(**chosen)
    resources = {
        **build_resources(settings),
        "model_registry": InMemoryRegistryResource(
            namespace=namespace, model_name=MODEL, experiment=EXPERIMENT
        ),
    }
    return dg.materialize(
        [*defs.assets, *defs.asset_checks],
        selection=dg.AssetSelection.groups(*TRAINING_GROUPS),
        resources=resources,
    )


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset]]
    metadata = events[-1].event_specific_data.materialization.metadata
    return {key: getattr(value, "value", value) for key, value in metadata.items()}


@pytest.fixture(scope="module")
def runs() -> tuple[InMemoryModelRegistry, dg.ExecuteInProcessResult, dg.ExecuteInProcessResult]:
    """The same data and seed twice: the second candidate equals the champion."""
    namespace = f"graph-{uuid.uuid4().hex}"
    first = _materialize(namespace)
    second = _materialize(namespace)
    return memory_registry(namespace, MODEL, EXPERIMENT), first, second


def test_every_training_asset_and_check_ran(runs) -> None:
    _, first, _ = runs
    assert first.success
    materialized = {e.asset_key.to_user_string() for e in first.get_asset_materialization_events()}
    assert materialized == {
        "raw_customers",
        "clean_customers",
        "customer_split",
        "churn_candidate",
        "candidate_evaluation",
        "challenger_version",
        "champion_version",
    }
    checks = first.get_asset_check_evaluations()
    assert len(checks) == 5 and all(check.passed for check in checks)


def test_the_first_candidate_becomes_champion_with_its_run_logged(runs) -> None:
    registry, first, _ = runs
    gate = _metadata(first, "champion_version")
    assert gate["promoted"] is True
    assert gate["champion_version"] == "1"
    assert gate["reason"].startswith("no champion yet; challenger AUC ")
    champion = registry.version("1")
    assert CHAMPION in champion.aliases and CHALLENGER not in champion.aliases
    assert champion.tags["gate.decision"] == "promoted"
    assert champion.tags["gate.champion_version"] == "none"
    assert champion.tags["holdout.roc_auc"] == f"{gate['challenger_auc']:.4f}"
    run = registry.runs[champion.run_id]
    assert run.experiment == EXPERIMENT
    assert run.metrics["roc_auc"] == pytest.approx(gate["challenger_auc"], abs=1e-4)
    assert {"evaluation/feature_importance.png", "evaluation/roc_curve.png"} <= set(run.figures)
    assert all(png.startswith(b"\x89PNG") for png in run.figures.values())
    assert set(run.datasets) == {"training", "holdout"}
    assert run.params["recipe"] == "logistic_regression"
    reference = registry.load_reference(champion.run_id)
    assert len(reference) == len(run.datasets["holdout"])
    assert _metadata(first, "churn_candidate")["mlflow_run_id"] == champion.run_id
    # The gate report and the model card are artifacts of the run; the version points at them.
    assert json.loads(run.texts[champion.tags["gate.report"]])["decision"] == "promoted"
    card = run.texts[champion.tags["model_card"]]
    assert card.startswith("# Model card: churn-graph v1") and "promoted" in card
    assert champion.tags["gate.p_value"] == "n/a (no champion)"
    assert MONITORING_EXPERIMENT not in registry.experiments


def test_an_equal_candidate_is_rejected_and_the_champion_kept(runs) -> None:
    registry, first, second = runs
    assert second.success
    gate = _metadata(second, "champion_version")
    assert gate["promoted"] is False
    assert gate["challenger_version"] == "2"
    assert gate["champion_version"] == "1"
    first_auc = _metadata(first, "champion_version")["challenger_auc"]
    # Re-scored on the second run's holdout (the same split), the champion scores the same.
    assert gate["champion_auc_same_holdout"] == pytest.approx(first_auc)
    assert f"does not beat champion {first_auc:.4f}" in gate["reason"]
    assert registry.champion().version == "1"
    assert registry.by_alias(CHALLENGER).version == "2"
    assert registry.version("2").tags["gate.decision"] == "rejected"
    assert registry.version("2").tags["gate.reason"] == gate["reason"]
    # A retrain on the same data and seed ranks every customer the same: no difference at all.
    assert gate["p_value"] == registry.version("2").tags["gate.p_value"] == "1"
    assert gate["auc_diff_ci"] == "+0.0000 [+0.0000, +0.0000] 90%"
    assert "| Contract = Month-to-month |" in gate["slices"]
    assert "| p-value (H0: difference <= 0.002) | 1, alpha 0.05 |" in gate["gate_report"]
    assert [event.to_version for event in registry.alias_history()] == ["1"]


def _flood_of_flipped_labels(url: str, rows: int) -> None:
    """Served customers whose labels all arrive flipped: what a broken or hostile label feed
    sends."""
    customers = clean_customers(generate_customers(rows, seed=99), "flood", TELCO).frame
    engine = prediction_store.connect(url, TELCO)
    records = customers.assign(customerID="flood-" + customers["customerID"].astype(str))
    now = time.time()  # answered lately: retraining reads a recent window of the log
    answered = [
        {
            **{name: record[name] for name in TELCO.feature_names},
            "customerID": record["customerID"],
            "request_id": f"flood-{i}",
            "ts": now - rows + i,
            "model_version": "1",
            "churn_probability": 0.5,
            "churn": "No",
        }
        for i, record in enumerate(records.to_dict("records"))
    ]
    prediction_store.write_predictions(engine, TELCO, answered)
    flipped = [
        {"customerID": record["customerID"], "Churn": "No" if record["Churn"] else "Yes"}
        for record in records.to_dict("records")
    ]
    prediction_store.write_feedback(engine, TELCO, flipped)


def test_a_flood_of_flipped_labels_cannot_pass_the_gate(tmp_path: Path) -> None:
    """The base data's own holdout stays the frozen reference: a challenger trained on a
    flood of flipped production labels may fit them, but it is judged there too, and fails."""
    namespace = f"flood-{uuid.uuid4().hex}"
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    first = _materialize(namespace, prediction_store_url=url)
    assert _metadata(first, "champion_version")["promoted"] is True
    # Large enough that the challenger learns the flipped labels and, on a holdout that is
    # mostly production rows, beats the champion significantly.
    _flood_of_flipped_labels(url, 20_000)
    second = _materialize(namespace, prediction_store_url=url)
    split = _metadata(second, "customer_split")
    assert split["frozen_holdout_rows"] == 600 and split["holdout_rows"] == 600 + 4000
    gate = _metadata(second, "champion_version")
    assert gate["promoted"] is False
    # The frozen reference is the only ground: everywhere else the flood would have passed.
    reason = gate["reason"]
    assert reason.startswith("worse than champion by more than 0.02 AUC on frozen"), reason
    assert "| frozen reference holdout |" in gate["slices"]
    assert memory_registry(namespace, MODEL, EXPERIMENT).champion().version == "1"


def test_the_candidate_run_records_how_it_was_chosen(runs) -> None:
    """Pinned to one recipe: its CV row, the calibration decision and no tuning (budget 0)."""
    registry, first, _ = runs
    candidate = _metadata(first, "churn_candidate")
    run = registry.runs[candidate["mlflow_run_id"]]
    (row,) = json.loads(run.texts["selection/cv_table.json"])
    assert row["recipe"] == "logistic_regression" and row["chosen"] is True
    assert run.metrics["cv_roc_auc"] == pytest.approx(row["roc_auc_mean"], abs=1e-4)
    assert "| logistic_regression |" in candidate["cv_table"]
    calibration = json.loads(run.texts["calibration/report.json"])
    assert calibration["method"] == run.params["calibration"] == candidate["calibration"]
    assert set(calibration["brier"]) == {"none", "sigmoid", "isotonic"}
    assert run.figures["calibration/reliability.png"].startswith(b"\x89PNG")
    assert candidate["reliability"].startswith("![reliability.png](data:image/png;base64,")
    assert run.params["recipe_choice"] == "logistic_regression"
    assert not any(path.startswith("tuning/") for path in run.texts)
    assert "tuning_trials" not in candidate


def test_a_tuned_candidate_logs_its_study_and_trials() -> None:
    namespace = f"graph-tuned-{uuid.uuid4().hex}"
    result = _materialize(namespace, tuning_budget_seconds=600, tuning_max_trials=2)
    assert result.success
    candidate = _metadata(result, "churn_candidate")
    run = memory_registry(namespace, MODEL, EXPERIMENT).runs[candidate["mlflow_run_id"]]
    trials = json.loads(run.texts["tuning/trials.json"])
    assert [trial["number"] for trial in trials] == [0, 1]
    assert all(trial["state"] == "COMPLETE" and trial["cv_roc_auc"] > 0.7 for trial in trials)
    assert trials[0]["c"] == 1.0  # the first trial is the recipe's starting params
    assert json.loads(run.texts["tuning/study.json"])["trials"] == 2
    assert '"study_name"' in run.texts["tuning/study.journal"]
    assert candidate["tuning_trial_count"] == 2
    assert candidate["tuning_trials"].split("|")[1].strip() == "number"
    assert run.metrics["tuning_trials"] == 2


# Another business's data: no id column, a 0/1 target, a boolean and an open categorical.
GYM_CONTRACT = """\
version: 1
dataset: gym-members
target: {name: churned, positive: [1], negative: [0]}
features:
  - {name: age, kind: integer, minimum: 16, maximum: 100}
  - {name: monthly_spend, kind: numeric, minimum: 0}
  - {name: has_app, kind: boolean}
  - {name: plan, kind: categorical}
"""


def _gym_members(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(16, 80, rows)
    spend = rng.gamma(4.0, 12.0, rows).round(2)
    has_app = rng.random(rows) < 0.5
    plan = rng.choice(["basic", "plus", "pro", "family"], rows, p=[0.4, 0.3, 0.2, 0.1])
    logit = -0.4 + 1.6 * (plan == "basic") - 1.4 * has_app + 0.03 * (40 - age) - 0.01 * spend
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "age": age,
            "monthly_spend": spend,
            "has_app": np.where(has_app, "true", "false"),
            "plan": plan,
            "churned": churned.astype(int),
        }
    )


@pytest.fixture(scope="module")
def two_contracts(tmp_path_factory) -> tuple[InMemoryModelRegistry, dict, dict]:
    """One registry: a Telco file with lower-case headers (default contract), then a gym's file
    under its own contract."""
    folder: Path = tmp_path_factory.mktemp("contracts")
    telco_csv = folder / "telco-lower.csv"
    telco = generate_customers(3000, seed=11)
    telco.rename(columns=str.lower).to_csv(telco_csv, index=False)
    gym_csv, gym_contract = folder / "gym.csv", folder / "gym.yaml"
    _gym_members(2000, seed=3).to_csv(gym_csv, index=False)
    gym_contract.write_text(GYM_CONTRACT, encoding="utf-8")
    namespace = f"graph-contracts-{uuid.uuid4().hex}"
    telco_run = _materialize(namespace, data_path=str(telco_csv))
    gym_run = _materialize(namespace, data_path=str(gym_csv), contract=gym_contract)
    registry = memory_registry(namespace, MODEL, EXPERIMENT)
    return registry, {"result": telco_run}, {"result": gym_run, "contract": gym_contract}


def test_lower_case_telco_headers_train_with_the_default_contract(two_contracts) -> None:
    registry, telco, _ = two_contracts
    result = telco["result"]
    assert result.success
    assert all(check.passed for check in result.get_asset_check_evaluations())
    contract = telco_contract()
    raw = _metadata(result, "raw_customers")
    assert (raw["contract"], raw["contract_fingerprint"]) == ("telco-churn", contract.fingerprint)
    assert _metadata(result, "clean_customers")["dagster/row_count"] == 3000
    version = registry.version("1")
    assert version.tags[CONTRACT_FINGERPRINT_TAG] == contract.fingerprint
    assert version.tags[CONTRACT_DATASET_TAG] == "telco-churn"
    assert registry.contract_of("1") == contract


def test_another_contract_trains_through_the_whole_graph(two_contracts) -> None:
    registry, _, gym = two_contracts
    result = gym["result"]
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 5 and all(check.passed for check in checks)
    contract = load_contract(gym["contract"])
    schema = _metadata(result, "clean_customers")["dagster/column_schema"]
    assert [c.name for c in schema.columns] == [
        "row_id",
        "age",
        "monthly_spend",
        "has_app",
        "plan",
        "churned",
    ]
    version = registry.version("2")
    assert version.tags[CONTRACT_FINGERPRINT_TAG] == contract.fingerprint
    assert version.tags[CONTRACT_DATASET_TAG] == "gym-members"
    run = registry.runs[version.run_id]
    assert run.texts[CONTRACT_ARTIFACT] == dump_contract(contract)
    assert run.tags[CONTRACT_FINGERPRINT_TAG] == contract.fingerprint
    assert float(version.tags["holdout.roc_auc"]) > 0.7
    model = registry.load_model("2")
    assert list(model.feature_names_in_) == ["age", "monthly_spend", "has_app", "plan"]
    reference = registry.load_reference(version.run_id)
    assert {"age", "monthly_spend", "has_app", "plan"} <= set(reference.columns)


def test_the_gate_does_not_compare_models_of_two_contracts(two_contracts) -> None:
    registry, _, gym = two_contracts
    gate = _metadata(gym["result"], "champion_version")
    telco = telco_contract().fingerprint
    assert gate["promoted"] is True
    assert gate["champion_auc_same_holdout"] == "none"
    assert gate["reason"].startswith(
        f"champion v1 was trained on contract telco-churn (fingerprint {telco}), not on gym-members"
    )
    assert "not compared, the challenger is judged alone; challenger AUC" in gate["reason"]
    assert registry.champion().version == "2"
    assert registry.version("2").tags["gate.champion_version"] == "1"
