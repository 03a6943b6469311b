"""How a model is chosen and promoted, end to end against a real MLflow server: the training
graph with tuning on leaves its CV table, Optuna study and trials, gate report and model card
in MLflow and in Dagster's metadata."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from churnops.model.recipes import RECIPES
from churnops.model.tuning import load_study
from registry.mlflow_registry import MlflowModelRegistry
from tests.integration.pipeline import materialization_metadata, materialize_pipeline

pytestmark = pytest.mark.integration

MODEL = "churn-quality"
SETTINGS = {"synthetic_rows": 4_000, "tuning_budget_seconds": 3}


@pytest.fixture(scope="module")
def first(mlflow_uri: str):
    """The first model: no champion, so it only has to clear the minimum AUC."""
    return materialize_pipeline(mlflow_uri, MODEL, **SETTINGS)


@pytest.fixture(scope="module")
def second(first, mlflow_uri: str):
    """A retrain on the same data and seed: compared with the first by the significance test."""
    assert first.success
    return materialize_pipeline(mlflow_uri, MODEL, **SETTINGS)


def _registry(mlflow_uri: str) -> MlflowModelRegistry:
    return MlflowModelRegistry(mlflow_uri, MODEL, "churn-training")


def _artifacts(mlflow_uri: str, run_id: str, folder: str | None = None) -> set[str]:
    return {a.path for a in MlflowClient(mlflow_uri).list_artifacts(run_id, folder)}


def _text(mlflow_uri: str, run_id: str, path: str) -> str:
    return _registry(mlflow_uri).load_text(run_id, path)


def test_cv_table_of_every_recipe_is_in_dagster_and_mlflow(first, mlflow_uri: str) -> None:
    assert first.success
    candidate = first.output_for_node("churn_candidate")
    metadata = materialization_metadata(first, "churn_candidate")
    table = metadata["cv_table"].value
    for name in RECIPES:
        assert name in table
    assert metadata["recipe"].value in RECIPES
    run_id = candidate.run.run_id
    assert {"selection/cv_table.md", "selection/cv_table.json"} <= _artifacts(
        mlflow_uri, run_id, "selection"
    )
    rows = json.loads(_text(mlflow_uri, run_id, "selection/cv_table.json"))
    assert {row["recipe"] for row in rows} == set(RECIPES)
    assert [row["recipe"] for row in rows if row["chosen"]] == [candidate.recipe]
    for row in rows:
        assert 0.5 < row["roc_auc_mean"] <= 1.0 and row["roc_auc_std"] >= 0
    metrics = MlflowClient(mlflow_uri).get_run(run_id).data.metrics
    assert 0.5 < metrics["cv_roc_auc"] <= 1.0


def test_tuning_study_and_trials_are_stored_with_the_run(first, mlflow_uri: str, tmp_path) -> None:
    candidate = first.output_for_node("churn_candidate")
    run_id = candidate.run.run_id
    assert {
        "tuning/study.journal",
        "tuning/study.json",
        "tuning/trials.md",
        "tuning/trials.json",
    } <= _artifacts(mlflow_uri, run_id, "tuning")
    trials = json.loads(_text(mlflow_uri, run_id, "tuning/trials.json"))
    assert len(trials) >= 1
    assert all(trial["state"] in {"COMPLETE", "FAIL", "PRUNED", "RUNNING"} for trial in trials)
    assert any(trial["state"] == "COMPLETE" for trial in trials)
    study = json.loads(_text(mlflow_uri, run_id, "tuning/study.json"))
    assert study["trials"] == len(trials) and study["recipe"] == candidate.recipe
    journal = tmp_path / "study.journal"
    journal.write_text(_text(mlflow_uri, run_id, "tuning/study.journal"))
    assert len(load_study(journal, study["study_name"]).trials) == len(trials)
    metadata = materialization_metadata(first, "churn_candidate")
    assert metadata["tuning_trial_count"].value == len(trials)
    assert "cv_roc_auc" in metadata["tuning_trials"].value


def test_first_model_card_records_the_gate_decision(first, mlflow_uri: str) -> None:
    version = first.output_for_node("challenger_version")
    run_id = first.output_for_node("churn_candidate").run.run_id
    info = _registry(mlflow_uri).version(version)
    assert info.tags["gate.decision"] == "promoted"
    card = _text(mlflow_uri, run_id, info.tags["model_card"])
    assert card.startswith(f"# Model card: {MODEL} v{version}")
    for section in ("## Data", "## Cross-validation", "## Calibration", "## Gate decision"):
        assert section in card
    assert "- **Decision:** promoted" in card
    assert "no champion yet" in card


def test_retrain_is_compared_by_significance_and_tagged(second, first, mlflow_uri: str) -> None:
    """Same data and seed: no significant gain, so the first model stays champion, and the
    version carries the test's figures."""
    assert second.success
    version = second.output_for_node("challenger_version")
    registry = _registry(mlflow_uri)
    assert registry.champion().version == first.output_for_node("challenger_version")
    tags = registry.version(version).tags
    assert tags["gate.decision"] == "rejected"
    assert 0.0 <= float(tags["gate.p_value"]) <= 1.0
    assert "[" in tags["gate.auc_diff_ci"] and "%" in tags["gate.auc_diff_ci"]
    run_id = second.output_for_node("churn_candidate").run.run_id
    assert {"gate/report.json", "gate/report.md"} <= _artifacts(mlflow_uri, run_id, "gate")
    report = json.loads(_text(mlflow_uri, run_id, "gate/report.json"))
    assert report["decision"] == "rejected" and report["comparison"]["p_value"] >= 0.05
    card = _text(mlflow_uri, run_id, tags["model_card"])
    assert "- **Decision:** rejected" in card
    assert f"- **p-value (one-sided):** {report['comparison']['p_value']:.4f}" in card
    gate = materialization_metadata(second, "champion_version")
    assert gate["promoted"].value is False
    assert gate["p_value"].value == tags["gate.p_value"]
    assert "verdict" in gate["slices"].value
