"""The promotion gate and alias history over the in-memory registry: no MLflow server."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from churnops.contract import Contract, dump_contract, parse_contract, telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.split import Split, stratified_split
from churnops.data.synthetic import generate_customers
from churnops.model import recipes
from churnops.model.gate import GateRules
from churnops.model.slices import SliceSpec
from registry.interface import (
    CHALLENGER,
    CHAMPION,
    CONTRACT_ARTIFACT,
    CONTRACT_DATASET_TAG,
    CONTRACT_FINGERPRINT_TAG,
    LoggedRun,
    RegistryError,
)
from registry.memory import InMemoryModelRegistry
from registry.promotion import (
    REPORT_JSON,
    REPORT_MARKDOWN,
    gate_challenger,
    holdout_auc,
    load_report,
)

pytestmark = pytest.mark.unit

TELCO = telco_contract()

RULES = GateRules(
    min_auc=0.7,
    margin=0.002,
    alpha=0.05,
    slices=(SliceSpec.parse("InternetService"), SliceSpec.parse("tenure:0,12,48")),
    slice_min_rows=100,
    slice_tolerance=0.02,
)


class ConstantModel:
    """Scores every customer the same: AUC 0.5 on any holdout."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.tile([0.7, 0.3], (len(frame), 1))


class NoisyModel:
    """A real model's scores blurred with noise: worse, but not useless."""

    def __init__(self, model, noise: float) -> None:
        self.model, self.noise = model, noise

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        churn = self.model.predict_proba(frame)[:, 1]
        churn = churn + np.random.default_rng(0).normal(0, self.noise, len(frame))
        return np.column_stack([1 - churn, churn])


class BlurredOnDsl:
    """A real model whose scores for DSL customers are blurred (a segment the challenger broke)."""

    def __init__(self, model, noise: float) -> None:
        self.model, self.noise = model, noise

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        churn = self.model.predict_proba(frame)[:, 1]
        blur = np.random.default_rng(1).normal(0, self.noise, len(frame))
        churn = np.where(frame["InternetService"] == "DSL", churn + blur, churn)
        return np.column_stack([1 - churn, churn])


@pytest.fixture(scope="module")
def split() -> Split:
    frame = clean_customers(generate_customers(3000, seed=5), "s", TELCO).frame
    return stratified_split(frame, TELCO, 0.2, 42)


@pytest.fixture(scope="module")
def model(split: Split):
    return recipes.train(split.train, "logistic_regression", seed=1, contract=TELCO)


def _register(registry: InMemoryModelRegistry, model, contract: Contract = TELCO) -> str:
    logged = registry.log_candidate("candidate", model, {}, {}, contract=contract)
    version = registry.register(logged, {})
    registry.set_challenger(version)
    return version


def _other_contract() -> Contract:
    """Telco's columns with another target spelling: a different contract, the same frames."""
    raw = TELCO.model_dump(mode="json", exclude_defaults=True)
    raw["dataset"] = "telco-relabelled"
    raw["target"] = {"name": "Churn", "positive": ["Yes", "1"], "negative": ["No", "0"]}
    return parse_contract(raw, "test")


def _report(registry: InMemoryModelRegistry, version: str) -> dict[str, object]:
    run = registry.runs[registry.version(version).run_id]
    assert run.texts[REPORT_MARKDOWN].startswith("# Promotion gate: ")
    report = load_report(registry, version)
    assert report == json.loads(run.texts[REPORT_JSON])
    return report


def test_the_first_model_over_the_minimum_is_promoted(split: Split, model) -> None:
    registry = InMemoryModelRegistry("churn", "training")
    version = _register(registry, model)
    auc = holdout_auc(registry, version, split.holdout, TELCO)
    outcome = gate_challenger(registry, version, split.holdout, RULES, TELCO)
    assert outcome.promoted and outcome.champion_version == version
    assert outcome.previous_champion is None
    assert outcome.report.challenger_auc == pytest.approx(auc)
    assert outcome.report.reason == f"no champion yet; challenger AUC {auc:.4f} >= 0.7"
    assert registry.champion().version == version
    assert registry.by_alias(CHALLENGER) is None  # the challenger became champion
    tags = registry.version(version).tags
    assert tags["gate.decision"] == "promoted"
    assert tags["gate.champion_version"] == "none"
    assert tags["gate.reason"] == outcome.report.reason
    assert tags["gate.p_value"] == tags["gate.auc_diff_ci"] == "n/a (no champion)"
    assert [e.to_version for e in registry.alias_history()] == [version]
    report = _report(registry, version)
    assert report["decision"] == "promoted" and report["comparison"] is None
    assert {row["verdict"] for row in report["slices"]} == {"challenger only"}


def test_a_retrained_equal_model_keeps_the_champion(split: Split, model) -> None:
    registry = InMemoryModelRegistry("churn", "training")
    first = _register(registry, model)
    first_auc = holdout_auc(registry, first, split.holdout, TELCO)
    gate_challenger(registry, first, split.holdout, RULES, TELCO)
    retrained = recipes.train(split.train, "logistic_regression", seed=1, contract=TELCO)
    second = _register(registry, retrained)
    outcome = gate_challenger(registry, second, split.holdout, RULES, TELCO)
    assert not outcome.promoted
    assert outcome.champion_version == first == outcome.previous_champion
    # The champion was re-scored on the same holdout: the same AUC, a difference of nothing.
    report = outcome.report
    assert report.champion_auc == pytest.approx(first_auc)
    assert report.comparison.diff == 0 and report.comparison.p_value == 1.0
    assert f"does not beat champion {first_auc:.4f}" in report.reason
    assert registry.champion().version == first
    assert registry.by_alias(CHALLENGER).version == second
    tags = registry.version(second).tags
    assert tags["gate.decision"] == "rejected"
    assert tags["gate.summary"] == "not significantly better"
    assert tags["gate.champion_version"] == first
    assert tags["gate.reason"] == report.reason
    assert tags["gate.p_value"] == "1"
    assert tags["gate.auc_diff_ci"] == "+0.0000 [+0.0000, +0.0000] 90%"
    assert _report(registry, second)["comparison"]["diff"] == 0


def test_a_significantly_better_challenger_replaces_a_weak_champion(split: Split, model) -> None:
    registry = InMemoryModelRegistry("churn", "training")
    weak = _register(registry, NoisyModel(model, noise=0.4))
    registry.promote(weak, "seeded")
    strong = _register(registry, model)
    outcome = gate_challenger(registry, strong, split.holdout, RULES, TELCO)
    report = outcome.report
    assert outcome.promoted, report.reason
    assert report.comparison.p_value < 0.001 and report.comparison.ci_low > RULES.margin
    assert f"beats champion {report.champion_auc:.4f}" in report.reason
    assert outcome.event.from_version == weak and outcome.event.to_version == strong
    assert outcome.event.reason == report.reason
    assert registry.champion().version == strong
    tags = registry.version(strong).tags
    assert float(tags["gate.p_value"]) < 0.001
    assert tags["gate.summary"] == "significantly better, no slice worse"


def test_a_challenger_worse_on_a_slice_is_kept_out(split: Split, model) -> None:
    registry = InMemoryModelRegistry("churn", "training")
    champion = _register(registry, NoisyModel(model, noise=0.5))
    registry.promote(champion, "seeded")
    broken = _register(registry, BlurredOnDsl(model, noise=0.5))
    rules = replace(RULES, slices=(SliceSpec.parse("InternetService"),))
    outcome = gate_challenger(registry, broken, split.holdout, rules, TELCO)
    report = outcome.report
    assert report.comparison.p_value < rules.alpha  # overall, significantly better
    assert not outcome.promoted
    assert report.summary == "worse on 1 slice"
    assert [s.name for s in report.worse_slices] == ["InternetService = DSL"]
    assert report.reason.startswith(
        "worse than champion by more than 0.02 AUC on InternetService = DSL"
    )
    assert registry.champion().version == champion
    assert registry.version(broken).tags["gate.slices"] == "3 judged, 1 worse, 0 not judged"
    rows = {row["name"]: row for row in _report(registry, broken)["slices"]}
    assert rows["InternetService = DSL"]["verdict"] == "worse"
    assert rows["InternetService = Fiber optic"]["verdict"] == "ok"


def test_below_the_minimum_nothing_moves(split: Split) -> None:
    registry = InMemoryModelRegistry("churn", "training")
    version = _register(registry, ConstantModel())
    outcome = gate_challenger(registry, version, split.holdout, RULES, TELCO)
    assert not outcome.promoted and outcome.champion_version is None
    assert outcome.report.reason == "challenger AUC 0.5000 is below minimum 0.7"
    assert registry.champion() is None
    assert registry.alias_history() == []


def test_a_version_without_a_report_loads_none(model) -> None:
    registry = InMemoryModelRegistry("churn", "training")
    version = _register(registry, model)
    assert load_report(registry, version) is None
    registry.tag_version(version, {"gate.report": REPORT_JSON})  # tagged, artifact missing
    assert load_report(registry, version) is None


def test_rollback_walks_back_through_the_recorded_history() -> None:
    registry = InMemoryModelRegistry("churn", "training")
    versions = [_register(registry, ConstantModel()) for _ in range(3)]
    with pytest.raises(RegistryError, match="no previous champion"):
        registry.rollback()
    for version in versions:
        registry.promote(version, f"promote {version}")
    event = registry.rollback("bad release")
    assert (event.from_version, event.to_version, event.action) == ("3", "2", "rollback")
    assert registry.champion().version == "2"
    assert registry.rollback().to_version == "1"
    assert registry.champion().version == "1"
    with pytest.raises(RegistryError):
        registry.rollback()
    history = registry.alias_history(CHAMPION)
    assert [(e.action, e.to_version) for e in history] == [
        ("promote", "1"),
        ("promote", "2"),
        ("promote", "3"),
        ("rollback", "2"),
        ("rollback", "1"),
    ]
    assert history[3].reason == "bad release"
    assert registry.versions()[0].aliases == (CHAMPION,)


def test_models_load_by_version_alias_and_logged_model_uri(model) -> None:
    registry = InMemoryModelRegistry("churn", "training")
    logged = registry.log_candidate("run", model, {"recipe": "lr"}, {"t": "1"}, contract=TELCO)
    version = registry.register(logged, {"k": "v"})
    registry.promote(version, "r")
    assert registry.load_model(version) is model
    assert registry.load_model(f"models:/churn/{version}") is model
    assert registry.load_model("models:/churn@champion") is model
    assert registry.load_model(logged.model_uri) is model
    assert registry.runs[logged.run_id].params == {"recipe": "lr"}
    with pytest.raises(RegistryError):
        registry.load_model("models:/churn@challenger")
    with pytest.raises(RegistryError):
        registry.register(LoggedRun("r", "0", "models:/m-404", "m-404"), {})


def test_reference_and_monitoring_runs_round_trip() -> None:
    registry = InMemoryModelRegistry("churn", "training")
    logged = registry.log_candidate("run", ConstantModel(), {}, {}, contract=TELCO)
    frame = pd.DataFrame({"tenure": [1, 2], "score": [0.1, 0.9]})
    registry.log_reference(logged.run_id, frame)
    pd.testing.assert_frame_equal(registry.load_reference(logged.run_id), frame)

    class Figure:
        def savefig(self, fname, format: str) -> None:
            fname.write(b"\x89PNG" + format.encode())

    registry.log_metrics_and_figures(logged.run_id, {"roc_auc": 0.8}, {"roc.png": Figure()})
    run = registry.runs[logged.run_id]
    assert run.metrics == {"roc_auc": 0.8}
    assert run.figures == {"evaluation/roc.png": b"\x89PNGpng"}
    monitoring = registry.log_monitoring_run("drift", {"rows": 3}, {"d/p.png": Figure()}, {})
    assert registry.runs[monitoring.run_id].experiment == "churn-monitoring"
    assert monitoring.experiment_id != logged.experiment_id
    assert registry.run_url(monitoring).endswith(monitoring.run_id)


def test_the_contract_travels_with_the_run_and_every_version(model) -> None:
    registry = InMemoryModelRegistry("churn", "training")
    logged = registry.log_candidate("run", model, {}, {"t": "1"}, contract=TELCO)
    version = registry.register(logged, {"k": "v"})
    run = registry.runs[logged.run_id]
    assert run.texts[CONTRACT_ARTIFACT] == dump_contract(TELCO)
    assert run.tags[CONTRACT_FINGERPRINT_TAG] == TELCO.fingerprint
    tags = registry.version(version).tags
    assert tags[CONTRACT_FINGERPRINT_TAG] == TELCO.fingerprint
    assert tags[CONTRACT_DATASET_TAG] == "telco-churn"
    assert tags["k"] == "v"
    assert registry.contract_of(version) == TELCO


def test_a_version_without_a_contract_file_has_no_contract(model) -> None:
    registry = InMemoryModelRegistry("churn", "training")
    version = _register(registry, model)
    del registry.runs[registry.version(version).run_id].texts[CONTRACT_ARTIFACT]
    assert registry.contract_of(version) is None


def test_a_champion_of_another_contract_is_not_compared(split: Split, model) -> None:
    """An equal champion of the same contract would keep the challenger out (not significantly
    better); one of another contract is not compared: the challenger is judged alone on the
    minimum AUC, and the reason says why."""
    other = _other_contract()
    assert other.fingerprint != TELCO.fingerprint
    registry = InMemoryModelRegistry("churn", "training")
    champion = _register(registry, model)
    registry.promote(champion, "seeded")
    challenger = _register(registry, model, other)
    outcome = gate_challenger(registry, challenger, split.holdout, RULES, other)
    report = outcome.report
    assert outcome.promoted and outcome.previous_champion == champion
    assert report.comparison is None and report.champion_auc is None
    assert report.reason == (
        f"champion v{champion} was trained on contract telco-churn (fingerprint "
        f"{TELCO.fingerprint}), not on telco-relabelled (fingerprint {other.fingerprint}): "
        f"not compared, the challenger is judged alone; challenger AUC "
        f"{report.challenger_auc:.4f} >= 0.7"
    )
    assert {row.verdict for row in report.slices} == {"challenger only"}
    assert registry.champion().version == challenger
    tags = registry.version(challenger).tags
    assert tags["gate.reason"] == report.reason
    assert tags["gate.champion_version"] == champion
    assert tags[CONTRACT_FINGERPRINT_TAG] == other.fingerprint
    assert "not compared" in _report(registry, challenger)["reason"]


def test_a_challenger_of_another_contract_still_needs_the_minimum(split: Split, model) -> None:
    registry = InMemoryModelRegistry("churn", "training")
    champion = _register(registry, model)
    registry.promote(champion, "seeded")
    challenger = _register(registry, ConstantModel(), _other_contract())
    outcome = gate_challenger(registry, challenger, split.holdout, RULES, _other_contract())
    assert not outcome.promoted and registry.champion().version == champion
    assert outcome.report.reason.endswith(
        "not compared, the challenger is judged alone; challenger AUC 0.5000 is below minimum 0.7"
    )


def test_a_champion_without_a_recorded_contract_is_not_compared(split: Split, model) -> None:
    registry = InMemoryModelRegistry("churn", "training")
    legacy = _register(registry, model)
    registry.model_versions[legacy].tags.pop(CONTRACT_FINGERPRINT_TAG)
    registry.promote(legacy, "seeded")
    challenger = _register(registry, model)
    outcome = gate_challenger(registry, challenger, split.holdout, RULES, TELCO)
    assert outcome.report.comparison is None
    assert outcome.report.reason.startswith(
        f"champion v{legacy} has no recorded data contract (trained before contracts "
        "travelled with models), not contract telco-churn"
    )
