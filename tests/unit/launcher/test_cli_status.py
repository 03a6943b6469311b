"""`churnops status` says why each version was or was not promoted, shows the newest
version's slice verdicts from its gate report, the configured data contract and whether the
champion was trained on it (over the in-memory registry, no server)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from churnops.contract import telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.split import stratified_split
from churnops.data.synthetic import generate_customers
from churnops.model import recipes
from churnops.model.gate import GateRules
from churnops.model.slices import SliceSpec
from churnops.monitoring import prediction_store
from launcher import cli
from registry.interface import CONTRACT_DATASET_TAG, CONTRACT_FINGERPRINT_TAG
from registry.memory import InMemoryModelRegistry
from registry.promotion import gate_challenger
from tests.unit.orchestration.test_live_gate_sensor import serve_pairs
from tests.unit.serving.contracts import GYM

pytestmark = pytest.mark.unit

TELCO = telco_contract()

RULES = GateRules(0.7, 0.002, 0.05, (SliceSpec.parse("Contract"),), 200, 0.02)


class NoisyModel:
    def __init__(self, model) -> None:
        self.model = model

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        churn = self.model.predict_proba(frame)[:, 1]
        churn = churn + np.random.default_rng(0).normal(0, 0.5, len(frame))
        return np.column_stack([1 - churn, churn])


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> InMemoryModelRegistry:
    frame = clean_customers(generate_customers(3000, seed=5), "s", TELCO).frame
    split = stratified_split(frame, TELCO)
    model = recipes.train(split.train, "logistic_regression", seed=1, contract=TELCO)
    registry = InMemoryModelRegistry("churn", "training")
    for candidate in (NoisyModel(model), model, model):  # promoted, promoted, rejected
        logged = registry.log_candidate("c", candidate, {}, {}, contract=TELCO)
        version = registry.register(logged, {})
        gate_challenger(registry, version, split.holdout, RULES, TELCO)
    monkeypatch.setattr(cli, "_registry", lambda settings: registry)
    monkeypatch.setattr(cli, "_services_table", lambda settings: Table("service"))
    monkeypatch.setattr(cli, "console", Console(width=250))  # no wrapping inside cells
    return registry


def _rows(output: str) -> dict[str, str]:
    return {line.split("│")[1].strip(): line for line in output.splitlines() if "│" in line}


def test_status_shows_each_gate_decision_and_the_newest_slice_verdicts(registry) -> None:
    result = CliRunner().invoke(cli.app, ["status"])
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert "promoted" in rows["1"] and "first model over the minimum AUC" in rows["1"]
    assert "n/a (no champion)" in rows["1"]
    assert "significantly better, no slice worse" in rows["2"]
    assert "rejected" in rows["3"] and "not significantly better" in rows["3"]
    assert registry.version("3").tags["gate.p_value"] == "1"
    assert "version 3: rejected: challenger AUC" in result.output
    assert "gate slices of version 3" in result.output
    assert rows["Contract = Month-to-month"].rstrip(" │").endswith("│ ok")
    assert "not judged (< 200 rows)" in rows["Contract = Two year"]


def test_status_says_when_the_newest_version_has_no_report(registry) -> None:
    registry.register(registry.log_candidate("c", NoisyModel(None), {}, {}, contract=TELCO), {})
    result = CliRunner().invoke(cli.app, ["status"])
    assert result.exit_code == 0, result.output
    assert "version 4: not gated yet" in result.output


def test_status_shows_the_contract_and_that_the_champion_was_trained_on_it(registry) -> None:
    result = CliRunner().invoke(cli.app, ["status"])
    assert f"data contract: telco-churn (fingerprint {TELCO.fingerprint})" in result.output
    assert "@champion: version 2 (trained on this contract)" in result.output


def test_status_warns_when_the_champion_was_trained_on_another_contract(registry) -> None:
    registry.tag_version(
        "2", {CONTRACT_FINGERPRINT_TAG: GYM.fingerprint, CONTRACT_DATASET_TAG: GYM.dataset}
    )
    result = CliRunner().invoke(cli.app, ["status"])
    assert result.exit_code == 0, result.output
    assert (
        f"@champion: version 2 was trained on contract gym-members (fingerprint "
        f"{GYM.fingerprint}), not on telco-churn (fingerprint "
        f"{telco_contract().fingerprint}): serving refuses it"
    ) in " ".join(result.output.split())


def test_a_broken_contract_file_ends_status_with_its_message(
    registry, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\ndataset: x\ntarget: {name: y, positive: [1], negative: [0]}\n")
    monkeypatch.setenv("CHURNOPS_CONTRACT", str(broken))
    result = CliRunner().invoke(cli.app, ["status"])
    assert result.exit_code == 1
    assert str(broken) in " ".join(result.output.split()) and "features" in result.output


def _status() -> str:
    return CliRunner().invoke(cli.app, ["status"]).output


def test_status_shows_the_live_comparison_of_champion_and_challenger(
    registry, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("CHURNOPS_PREDICTION_STORE_URL", store)
    monkeypatch.setenv("CHURNOPS_LIVE_GATE_MIN_LABELLED", "100")
    assert "live comparison: no @challenger beside @champion" in _status()
    registry.set_challenger("3")
    result = CliRunner().invoke(cli.app, ["status"])
    assert "live comparison: champion v2 vs challenger v3: no prediction store yet" in (
        result.output
    )
    serve_pairs(prediction_store.connect(store, TELCO), "2", "3", 150, "worse")
    result = CliRunner().invoke(cli.app, ["status"])
    assert result.exit_code == 0, result.output
    assert "live comparison: 150 labelled paired requests" in result.output
    rows = _rows(result.output)
    assert [cell.strip() for cell in rows["version"].split("│")[2:4]] == ["v2", "v3"]
    auc = rows["ROC AUC"].split("│")
    assert float(auc[3]) < float(auc[2]) and "90%" in auc[4]
    assert "Brier" in rows and "ECE (10 bins)" in rows
    assert "live gate (off) would reject: challenger v3 vs champion v2: may be worse" in (
        " ".join(result.output.split())
    )
    document = json.loads(CliRunner().invoke(cli.app, ["status", "--json"]).output)
    live = document["live_comparison"]
    assert live["comparison"]["labelled"] == 150 and live["verdict"]["decision"] == "reject"
