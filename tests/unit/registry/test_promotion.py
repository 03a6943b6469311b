"""The promotion gate and alias history over the in-memory registry: no MLflow server."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops.data.cleaning import clean_customers
from churnops.data.split import Split, stratified_split
from churnops.data.synthetic import generate_customers
from churnops.model import recipes
from registry.interface import CHALLENGER, CHAMPION, LoggedRun, RegistryError
from registry.memory import InMemoryModelRegistry
from registry.promotion import gate_challenger, holdout_auc

pytestmark = pytest.mark.unit

POLICY = {"min_auc": 0.7, "margin": 0.002}


class ConstantModel:
    """Scores every customer the same: AUC 0.5 on any holdout."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.tile([0.7, 0.3], (len(frame), 1))


@pytest.fixture(scope="module")
def split() -> Split:
    return stratified_split(clean_customers(generate_customers(3000, seed=5), "s").frame)


@pytest.fixture(scope="module")
def model(split: Split):
    return recipes.train(split.train, "logistic_regression", seed=1)


def _register(registry: InMemoryModelRegistry, model) -> str:
    logged = registry.log_candidate("candidate", model, {}, {})
    version = registry.register(logged, {})
    registry.set_challenger(version)
    return version


def test_the_first_model_over_the_minimum_is_promoted(split: Split, model) -> None:
    registry = InMemoryModelRegistry("churn", "training")
    version = _register(registry, model)
    auc = holdout_auc(registry, version, split.holdout)
    outcome = gate_challenger(registry, version, auc, split.holdout, **POLICY)
    assert outcome.promoted and outcome.champion_version == version
    assert outcome.previous_champion is None
    assert outcome.decision.reason == f"no champion yet; challenger AUC {auc:.4f} >= 0.7"
    assert registry.champion().version == version
    assert registry.by_alias(CHALLENGER) is None  # the challenger became champion
    tags = registry.version(version).tags
    assert tags["gate.decision"] == "promoted"
    assert tags["gate.champion_version"] == "none"
    assert tags["gate.reason"] == outcome.decision.reason
    assert [e.to_version for e in registry.alias_history()] == [version]


def test_a_challenger_not_better_by_the_margin_keeps_the_champion(split: Split, model) -> None:
    registry = InMemoryModelRegistry("churn", "training")
    first = _register(registry, model)
    first_auc = holdout_auc(registry, first, split.holdout)
    gate_challenger(registry, first, first_auc, split.holdout, **POLICY)
    second = _register(registry, model)
    claimed = first_auc + 0.001  # better, but by less than the margin
    outcome = gate_challenger(registry, second, claimed, split.holdout, **POLICY)
    assert not outcome.promoted
    assert outcome.champion_version == first == outcome.previous_champion
    # The champion was re-scored on the same holdout, and both AUCs appear at 4 decimals.
    assert outcome.decision.champion_auc == pytest.approx(first_auc)
    reason = outcome.decision.reason
    assert f"challenger AUC {claimed:.4f} does not beat champion {first_auc:.4f}" in reason
    assert f"needs {first_auc + 0.002:.4f}" in reason
    assert registry.champion().version == first
    assert registry.by_alias(CHALLENGER).version == second
    tags = registry.version(second).tags
    assert tags["gate.decision"] == "rejected"
    assert tags["gate.champion_version"] == first
    assert tags["gate.reason"] == reason


def test_a_better_challenger_replaces_a_weak_champion(split: Split, model) -> None:
    registry = InMemoryModelRegistry("churn", "training")
    weak = _register(registry, ConstantModel())
    registry.promote(weak, "seeded")
    strong = _register(registry, model)
    auc = holdout_auc(registry, strong, split.holdout)
    outcome = gate_challenger(registry, strong, auc, split.holdout, **POLICY)
    assert outcome.promoted and outcome.decision.champion_auc == pytest.approx(0.5)
    assert f"beats champion {0.5:.4f}" in outcome.decision.reason
    assert outcome.event.from_version == weak and outcome.event.to_version == strong
    assert registry.champion().version == strong


def test_below_the_minimum_nothing_moves(split: Split) -> None:
    registry = InMemoryModelRegistry("churn", "training")
    version = _register(registry, ConstantModel())
    outcome = gate_challenger(registry, version, 0.5, split.holdout, **POLICY)
    assert not outcome.promoted and outcome.champion_version is None
    assert outcome.decision.reason == "challenger AUC 0.5000 is below minimum 0.7"
    assert registry.champion() is None
    assert registry.alias_history() == []


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
    logged = registry.log_candidate("run", model, {"recipe": "lr"}, {"t": "1"})
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
    logged = registry.log_candidate("run", ConstantModel(), {}, {})
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
