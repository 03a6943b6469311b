"""Shadow -> labels -> live gate through the whole local stack: `churnops up` with shadow serving
and the live gate on; the Dagster daemon's `live_gate_sensor` requests the `live_gate` job by
itself, which promotes a better challenger on paired live evidence and keeps a worse one out."""

from __future__ import annotations

from pathlib import Path

import pytest

from churnops.contract import telco_contract
from launcher.simulator import simulate
from registry.mlflow_registry import MlflowModelRegistry
from tests.e2e.stack import RunningStack, start_stack, wait_for
from tests.rollout_versions import register_flipped, wait_for_rollout

pytestmark = pytest.mark.e2e

TELCO = telco_contract()
LABELLED = 150


def _labelled_traffic(stack: RunningStack, seed: int) -> None:
    sent = simulate(stack.bento, LABELLED + 20, contract=TELCO, seed=seed, batch_size=85)
    assert sent.errors == 0 and sent.labels_sent == LABELLED + 20


def _live_gate_runs(stack: RunningStack) -> list[dict]:
    return [run for run in stack.runs("live_gate") if run["status"] == "SUCCESS"]


def test_the_daemon_promotes_a_better_shadowed_challenger_and_keeps_a_worse_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = start_stack(
        tmp_path,
        synthetic_rows="3000",
        alias_poll_seconds="2",
        rollout="shadow",
        live_gate="on",
        live_gate_min_labelled=str(LABELLED),
        monitor_interval_seconds="5",
    )
    try:
        stack.log_in(monkeypatch)
        registry = MlflowModelRegistry(stack.mlflow, "churn", "churn-training")
        weak = register_flipped(registry, "weak", seed=3, flip=0.45)
        registry.promote(weak, "e2e: a weak champion")
        better = register_flipped(registry, "better", seed=11, flip=0.0)
        registry.set_challenger(better)
        wait_for_rollout(stack.bento, weak, better)
        _labelled_traffic(stack, seed=1)
        wait_for(
            lambda: registry.champion().version == better,
            240,
            "the daemon's live gate to promote the better challenger",
            stack,
        )
        event = registry.alias_history()[-1]
        assert (event.action, event.from_version, event.to_version) == ("promote", weak, better)
        assert event.by == "live_gate" and "not worse by more than" in event.reason
        # The alias moves inside the run; the run itself succeeds a moment later.
        wait_for(lambda: len(_live_gate_runs(stack)) == 1, 60, "the live gate run to end", stack)

        worse = register_flipped(registry, "inverted", seed=5, flip=1.0)
        registry.set_challenger(worse)
        wait_for_rollout(stack.bento, better, worse)
        _labelled_traffic(stack, seed=2)
        wait_for(
            lambda: registry.version(worse).tags.get("live_gate.decision") == "rejected",
            240,
            "the daemon's live gate to judge the worse challenger",
            stack,
        )
        assert registry.champion().version == better
        assert registry.alias_history()[-1] == event
        wait_for(lambda: len(_live_gate_runs(stack)) == 2, 60, "the second live gate run", stack)
    finally:
        code = stack.stop()
    assert code == 0, stack.output()[-3000:]
