"""Acceptance of "your own data", on the two non-Telco examples: generate a file, draft its
contract with `churnops contract infer`, check the file against the reviewed contract, train
through Dagster against a real MLflow server with CHURNOPS_CONTRACT set, and score through a
real Bento server whose request schema that contract shapes.

One Dagster materialization and one Bento server per example, and one more materialization for
a Telco file whose headers are all lower case (the default contract matches headers without case).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from churnops.contract import Contract, derive_row_id, load_contract, telco_contract
from churnops.data.synthetic import generate_customers
from examples.saas.generate import generate as generate_saas
from examples.subscriptions.generate import generate as generate_subscriptions
from launcher.cli import app
from registry.mlflow_registry import MlflowModelRegistry
from tests.conftest import BentoServer, start_bento, wait_ready
from tests.integration.pipeline import materialize_pipeline

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ROWS = 5_000


@dataclass(frozen=True)
class Example:
    name: str
    generate: Callable[[int], pd.DataFrame]
    # A request record: the contract's example, with the changes this test cares about.
    changes: dict[str, object] = field(default_factory=dict)
    # (field, bad value) pairs a client could get wrong; each must be a 400 naming the field.
    wrong: tuple[tuple[str, object], ...] = ()


EXAMPLE_SPECS = {
    "subscriptions": Example(
        "subscriptions",
        generate_subscriptions,
        changes={"plan": "premium", "tenure_months": 2, "payment_failures": 3},
        wrong=(("plan", "platinum"), ("tenure_months", "two"), ("customerID", "7590-VHVEG")),
    ),
    "saas": Example(
        "saas",
        generate_saas,
        # Booleans as JSON true/false, and an industry the training data never had.
        changes={"has_sso": True, "annual_billing": False, "industry": "asteroid mining"},
        wrong=(("has_sso", "maybe"), ("region", "MARS"), ("seats", -3)),
    ),
}


@dataclass
class Trained:
    example: Example
    csv: Path
    contract_path: Path
    contract: Contract
    model_name: str
    auc: float
    version: str
    server: BentoServer

    def record(self) -> dict[str, object]:
        return {**self.contract.example_record(), **self.example.changes}


def cli(*args: str):
    return CliRunner().invoke(app, ["contract", *args], terminal_width=200)


@pytest.fixture(scope="module", params=list(EXAMPLE_SPECS))
def trained(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str
) -> Iterator[Trained]:
    example = EXAMPLE_SPECS[request.param]
    folder = tmp_path_factory.mktemp(example.name)
    csv = folder / f"{example.name}.csv"
    example.generate(ROWS).to_csv(csv, index=False)
    contract_path = folder / "contract.yaml"
    contract_path.write_text((EXAMPLES / example.name / "contract.yaml").read_text())
    contract = load_contract(contract_path)
    model_name = f"own-data-{example.name}"
    result = materialize_pipeline(
        mlflow_uri, model_name, data_path=str(csv), contract=str(contract_path)
    )
    assert result.success
    server = start_bento(folder, mlflow_uri, model_name, CHURNOPS_CONTRACT=str(contract_path))
    try:
        wait_ready(server)
        yield Trained(
            example,
            csv,
            contract_path,
            contract,
            model_name,
            result.output_for_node("candidate_evaluation")["roc_auc"],
            result.output_for_node("champion_version"),
            server,
        )
    finally:
        server.stop()


def test_infer_drafts_what_the_reviewed_contract_says_and_check_accepts_the_file(
    trained: Trained, tmp_path: Path
) -> None:
    draft_path = tmp_path / "draft.yaml"
    drafted = cli("infer", str(trained.csv), "--out", str(draft_path))
    assert drafted.exit_code == 0, drafted.output
    draft = load_contract(draft_path)
    reviewed = trained.contract
    assert {f.name: f.kind for f in draft.features} == {f.name: f.kind for f in reviewed.features}
    assert (draft.id_column, draft.target.name, draft.target.positive) == (
        reviewed.id_column,
        reviewed.target.name,
        reviewed.target.positive,
    )
    checked = cli("check", str(trained.csv), "--contract", str(trained.contract_path))
    assert checked.exit_code == 0, checked.output
    assert f"{ROWS:,} rows match contract '{reviewed.dataset}'" in checked.stdout


def test_training_learns_and_registers_a_version_carrying_its_contract(
    trained: Trained, mlflow_uri: str
) -> None:
    assert trained.auc >= 0.75
    registry = MlflowModelRegistry(mlflow_uri, trained.model_name, "churn-training")
    info = registry.version(trained.version)
    assert info.tags["contract.fingerprint"] == trained.contract.fingerprint
    assert info.tags["contract.dataset"] == trained.contract.dataset
    artifacts = {a.path for a in MlflowClient(mlflow_uri).list_artifacts(info.run_id, "contract")}
    assert artifacts == {"contract/contract.yaml"}
    logged = registry.load_text(info.run_id, "contract/contract.yaml")
    assert yaml.safe_load(logged)["dataset"] == trained.contract.dataset


def test_bento_answers_a_record_shaped_by_the_contract(trained: Trained) -> None:
    record = trained.record()
    response = httpx.post(f"{trained.server.url}/predict", json={"customer": record})
    assert response.status_code == 200, response.text
    body = response.json()
    assert 0.0 <= body["churn_probability"] <= 1.0
    target = trained.contract.target
    assert body["churn"] in (target.positive_label, target.negative_label)
    assert body["model_version"] == trained.version
    if trained.contract.has_id:
        assert body[trained.contract.id_name] == record[trained.contract.id_name]
    else:
        assert trained.contract.id_name not in record
        values = [record[name] for name in trained.contract.feature_names]
        assert body[trained.contract.id_name] == derive_row_id(values)
    status = httpx.get(f"{trained.server.url}/model")
    assert status.status_code == 200
    assert trained.contract.fingerprint in status.text


def test_the_openapi_example_is_the_contracts(trained: Trained) -> None:
    spec = httpx.get(f"{trained.server.url}/docs.json").json()
    text = str(spec)
    for name in trained.contract.feature_names:
        assert name in text
    assert "SeniorCitizen" not in text


def test_a_wrong_field_is_400_naming_it(trained: Trained) -> None:
    for name, value in trained.example.wrong:
        record = {**trained.record(), name: value}
        response = httpx.post(f"{trained.server.url}/predict", json={"customer": record})
        assert response.status_code == 400, (name, response.status_code, response.text)
        assert name in response.text, response.text


def test_lower_case_telco_headers_train_with_the_default_contract(
    tmp_path: Path, mlflow_uri: str
) -> None:
    frame = generate_customers(4_000, seed=8)
    frame.columns = [column.lower() for column in frame.columns]
    csv = tmp_path / "telco-lower.csv"
    frame.to_csv(csv, index=False)
    model_name = "own-data-telco-lower-case"
    result = materialize_pipeline(mlflow_uri, model_name, data_path=str(csv), contract=None)
    assert result.success
    assert result.output_for_node("candidate_evaluation")["roc_auc"] >= 0.75
    registry = MlflowModelRegistry(mlflow_uri, model_name, "churn-training")
    tags = registry.version(result.output_for_node("champion_version")).tags
    assert tags["contract.fingerprint"] == telco_contract().fingerprint
