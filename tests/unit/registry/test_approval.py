"""Manual approval over the in-memory registry: the gate leaves a winner `pending-approval`,
`approve` promotes it recording who and when, and refuses what it must not promote."""

from __future__ import annotations

import pytest

from churnops.contract import telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.split import Split, stratified_split
from churnops.data.synthetic import generate_customers
from churnops.model import recipes
from churnops.model.gate import GateRules
from orchestration.approval import approve_challenger
from orchestration.resources import InMemoryRegistryResource, memory_registry
from registry.interface import CHALLENGER, RegistryError
from registry.memory import InMemoryModelRegistry
from registry.promotion import APPROVAL_TAG, PENDING, approve, gate_challenger

pytestmark = pytest.mark.unit

TELCO = telco_contract()
RULES = GateRules(
    min_auc=0.7, margin=0.0, alpha=0.05, slices=(), slice_min_rows=100, slice_tolerance=0.02
)


@pytest.fixture(scope="module")
def split() -> Split:
    frame = clean_customers(generate_customers(2000, seed=5), "s", TELCO).frame
    return stratified_split(frame, TELCO, 0.2, 42)


def _challenger(registry: InMemoryModelRegistry, split: Split) -> str:
    model = recipes.train(split.train, "logistic_regression", seed=1, contract=TELCO)
    version = registry.register(registry.log_candidate("c", model, {}, {}, contract=TELCO), {})
    registry.set_challenger(version)
    return version


def test_a_winner_waits_for_approval_then_approve_records_who_and_when(split: Split) -> None:
    registry = InMemoryModelRegistry("churn", "training")
    version = _challenger(registry, split)
    outcome = gate_challenger(registry, version, split.holdout, RULES, TELCO, approval="manual")
    assert outcome.report.promote and outcome.pending_approval and not outcome.promoted
    assert outcome.champion_version is None and registry.champion() is None
    tags = registry.version(version).tags
    assert tags[APPROVAL_TAG] == tags["gate.decision"] == PENDING
    assert registry.by_alias(CHALLENGER).version == version

    event = approve(registry, version, "alice")
    assert (event.action, event.to_version, event.by) == ("approve", version, "alice")
    assert event.reason.startswith("approved by alice: no champion yet")
    assert registry.champion().version == version
    tags = registry.version(version).tags
    assert (tags[APPROVAL_TAG], tags["approval.by"], tags["approval.at"]) == (
        "approved",
        "alice",
        event.at,
    )
    assert registry.alias_history()[-1] == event
    with pytest.raises(RegistryError, match=f"version {version} is not pending approval"):
        approve(registry, version, "alice")


def test_a_verdict_against_a_champion_that_has_since_changed_is_not_approved(
    split: Split,
) -> None:
    registry = InMemoryModelRegistry("churn", "training")
    first = _challenger(registry, split)
    second = _challenger(registry, split)
    gate_challenger(registry, second, split.holdout, RULES, TELCO, approval="manual")
    registry.promote(first, "meanwhile")
    with pytest.raises(RegistryError, match="verdict is stale"):
        approve(registry, second, "bob")
    assert registry.champion().version == first
    with pytest.raises(RegistryError, match="not pending approval \\(gate decision: not gated"):
        approve(registry, first, "bob")


def test_the_dagster_job_approves_and_refuses_without_retries(split: Split) -> None:
    namespace = "approval-job"
    registry = memory_registry(namespace, "churn", "training")
    version = _challenger(registry, split)
    gate_challenger(registry, version, split.holdout, RULES, TELCO, approval="manual")
    resources = {
        "model_registry": InMemoryRegistryResource(
            namespace=namespace, model_name="churn", experiment="training"
        )
    }
    config = {"ops": {"approve_version": {"config": {"version": version, "approved_by": "ui"}}}}
    result = approve_challenger.execute_in_process(run_config=config, resources=resources)
    assert result.success and registry.champion().version == version
    assert registry.alias_history()[-1].by == "ui"
    again = approve_challenger.execute_in_process(
        run_config=config, resources=resources, raise_on_error=False
    )
    assert not again.success
    failure = again.failure_data_for_node("approve_version")
    assert failure is not None and "not pending approval" in str(failure.error.message)


def test_with_the_live_gate_on_a_winner_waits_as_challenger_unless_it_is_the_first(
    split: Split,
) -> None:
    registry = InMemoryModelRegistry("churn", "training")
    anything_wins = GateRules(min_auc=0.7, margin=-1.0, alpha=0.05)
    first = _challenger(registry, split)
    outcome = gate_challenger(registry, first, split.holdout, anything_wins, TELCO, live_gate=True)
    assert outcome.promoted and registry.champion().version == first  # nothing to compare live
    second = _challenger(registry, split)
    outcome = gate_challenger(registry, second, split.holdout, anything_wins, TELCO, live_gate=True)
    assert outcome.report.promote and outcome.awaiting_live_evidence and not outcome.promoted
    assert outcome.champion_version == first and registry.champion().version == first
    assert registry.by_alias(CHALLENGER).version == second
    tags = registry.version(second).tags
    assert tags["gate.decision"] == tags["live_gate.status"] == "awaiting-live-evidence"
