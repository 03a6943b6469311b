"""The full asset graph materialized in-process against a real MLflow server."""

from __future__ import annotations

import json

import httpx
import mlflow.artifacts
import pytest
import yaml
from mlflow.tracking import MlflowClient

from churnops.contract import dump_contract, telco_contract
from registry.interface import (
    CONTRACT_ARTIFACT,
    CONTRACT_DATASET_TAG,
    CONTRACT_FINGERPRINT_TAG,
    RegistryError,
)
from registry.mlflow_registry import MlflowModelRegistry
from registry.promotion import REPORT_MARKDOWN, load_report
from tests.integration.pipeline import materialization_metadata, materialize_pipeline

pytestmark = pytest.mark.integration

MODEL = "churn-pipeline"


def _registry(mlflow_uri: str) -> MlflowModelRegistry:
    return MlflowModelRegistry(mlflow_uri, MODEL, "churn-training")


@pytest.fixture(scope="module")
def first_run(mlflow_uri: str):
    return materialize_pipeline(mlflow_uri, MODEL, synthetic_rows=50_000)


def test_pipeline_on_50k_synthetic_rows_reaches_auc_080(first_run, figures) -> None:
    assert first_run.success
    metrics = first_run.output_for_node("candidate_evaluation")
    recipe = first_run.output_for_node("churn_candidate").recipe
    figures(f"holdout ROC AUC on 50k synthetic Telco rows: {metrics['roc_auc']:.4f} ({recipe})")
    assert metrics["roc_auc"] >= 0.80
    assert metrics["holdout_rows"] == 10_000


def test_first_model_becomes_champion_in_mlflow_rest_api(first_run, mlflow_uri: str) -> None:
    champion = first_run.output_for_node("champion_version")
    response = httpx.get(
        f"{mlflow_uri}/api/2.0/mlflow/registered-models/alias",
        params={"name": MODEL, "alias": "champion"},
    )
    assert response.status_code == 200
    assert response.json()["model_version"]["version"] == champion
    tags = _registry(mlflow_uri).version(champion).tags
    assert tags["gate.decision"] == "promoted"
    assert tags["dagster.run_id"] == first_run.run_id
    assert len(tags["data.fingerprint"]) == 16
    assert tags[CONTRACT_FINGERPRINT_TAG] == telco_contract().fingerprint
    assert tags[CONTRACT_DATASET_TAG] == "telco-churn"


def test_the_contract_travels_with_the_run_and_the_model(first_run, mlflow_uri: str) -> None:
    """The run holds the contract file and its tags; the model's own folder (what a
    `models:/` download fetches) holds it too, beside a signature built from it."""
    contract = telco_contract()
    champion = first_run.output_for_node("champion_version")
    registry = _registry(mlflow_uri)
    run_id = registry.version(champion).run_id
    assert registry.load_text(run_id, CONTRACT_ARTIFACT) == dump_contract(contract)
    assert registry.contract_of(champion) == contract
    client = MlflowClient(mlflow_uri)
    assert client.get_run(run_id).data.tags[CONTRACT_FINGERPRINT_TAG] == contract.fingerprint
    files = mlflow.artifacts.download_artifacts(
        artifact_uri=client.get_model_version_download_uri(MODEL, champion),
        tracking_uri=mlflow_uri,
    )
    with open(f"{files}/contract.yaml", encoding="utf-8") as handle:
        assert yaml.safe_load(handle)["dataset"] == "telco-churn"
    with open(f"{files}/MLmodel", encoding="utf-8") as handle:
        inputs = json.loads(yaml.safe_load(handle)["signature"]["inputs"])
    assert [spec["name"] for spec in inputs] == list(contract.feature_names)
    nullable = {spec["name"] for spec in inputs if not spec["required"]}
    assert nullable == {f.name for f in contract.features if f.nullable}


def test_mlflow_run_records_params_metrics_plots_and_lineage(first_run, mlflow_uri: str) -> None:
    candidate = first_run.output_for_node("churn_candidate")
    run = MlflowClient(mlflow_uri).get_run(candidate.run.run_id)
    # `auto` by default: the recipe cross-validation chose is the one logged.
    assert run.data.params["recipe"] == candidate.recipe
    assert run.data.params["recipe_choice"] == "auto"
    assert run.data.params["split_seed"] == "42"
    assert run.data.metrics["roc_auc"] >= 0.80
    assert {"pr_auc", "f1", "brier"} <= set(run.data.metrics)
    assert run.data.tags["dagster.run_id"] == first_run.run_id
    assert run.data.tags["mlflow.source.git.commit"]
    assert run.data.tags["data.fingerprint"]
    artifacts = {
        a.path for a in MlflowClient(mlflow_uri).list_artifacts(candidate.run.run_id, "evaluation")
    }
    assert artifacts == {
        "evaluation/roc_curve.png",
        "evaluation/pr_curve.png",
        "evaluation/calibration.png",
        "evaluation/confusion_matrix.png",
        "evaluation/feature_importance.png",
        "evaluation/decision.json",
    }
    inputs = {
        next(tag.value for tag in item.tags if tag.key == "mlflow.data.context"): item.dataset
        for item in run.inputs.dataset_inputs
    }
    assert set(inputs) == {"training", "holdout"}
    assert inputs["training"].name == "customers-training"
    assert json.loads(inputs["training"].profile)["num_rows"] == int(run.data.params["train_rows"])


def test_dagster_materializations_link_to_mlflow(first_run, mlflow_uri: str) -> None:
    candidate = first_run.output_for_node("churn_candidate")
    training = materialization_metadata(first_run, "churn_candidate")
    assert training["mlflow_run"].url.startswith(mlflow_uri)
    assert training["mlflow_run"].url.endswith(candidate.run.run_id)
    evaluation = materialization_metadata(first_run, "candidate_evaluation")
    assert evaluation["roc_curve"].value.startswith("![roc_curve.png](data:image/png;base64,")
    gate = materialization_metadata(first_run, "champion_version")
    assert gate["promoted"].value is True


def test_gate_keeps_champion_when_challenger_is_not_better(first_run, mlflow_uri: str) -> None:
    """Same data and seed give the same AUC, which cannot beat the champion by the margin."""
    champion_before = first_run.output_for_node("champion_version")
    second = materialize_pipeline(mlflow_uri, MODEL, synthetic_rows=50_000)
    challenger = second.output_for_node("challenger_version")
    assert challenger != champion_before
    assert second.output_for_node("champion_version") == champion_before
    registry = _registry(mlflow_uri)
    assert registry.champion().version == champion_before
    rejected = registry.version(challenger).tags
    assert rejected["gate.decision"] == "rejected"
    assert "does not beat champion" in rejected["gate.reason"]
    assert float(rejected["gate.p_value"]) >= 0.05  # DeLong: no significant difference
    # The gate report and the model card are artifacts of the challenger's run.
    run_id = registry.version(challenger).run_id
    report = load_report(registry, challenger)
    assert report["decision"] == "rejected" and report["comparison"]["p_value"] >= 0.05
    assert {row["name"] for row in report["slices"]} >= {"Contract = Month-to-month"}
    assert registry.load_text(run_id, REPORT_MARKDOWN).startswith("# Promotion gate: rejected")
    assert "## Gate decision" in registry.load_text(run_id, rejected["model_card"])
    with pytest.raises(RegistryError):
        registry.load_text(run_id, "gate/missing.json")
