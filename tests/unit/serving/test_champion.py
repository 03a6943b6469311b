"""The champion follower: swaps versions, refuses broken ones and ones trained on another data
contract (the old one keeps serving, the status says why), backs off while the registry is away."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from churnops.contract import telco_contract
from churnops.model.scoring import UNSEEN_CATEGORY, check_rows
from churnops.records import record_model
from registry.interface import CONTRACT_DATASET_TAG, CONTRACT_FINGERPRINT_TAG
from registry.memory import InMemoryModelRegistry
from serving.champion import Candidate, ChampionFollower, pinned_resolver
from tests.unit.serving.contracts import GYM

pytestmark = pytest.mark.unit

TELCO = telco_contract()
OURS = {CONTRACT_FINGERPRINT_TAG: TELCO.fingerprint, CONTRACT_DATASET_TAG: TELCO.dataset}


class FakeModel:
    def __init__(self, value: float) -> None:
        self.value = value

    def predict_proba(self, frame):
        return np.tile([1 - self.value, self.value], (len(frame), 1))


def _candidate(version: str, tags: dict[str, str] | None = OURS) -> Candidate:
    return Candidate(version, f"models:/m/{version}", tags)


def test_follower_swaps_versions_and_refuses_broken_ones() -> None:
    target = {"candidate": _candidate("1")}
    models = {"models:/m/1": FakeModel(0.2), "models:/m/2": FakeModel(0.3), "models:/m/3": None}

    def load(uri: str):
        model = models[uri]
        if model is None:
            raise OSError("artifact missing")
        return model

    follower = ChampionFollower(lambda: target["candidate"], load, 60, TELCO)
    assert follower.refresh() and follower.current.version == "1"
    assert not follower.refresh()
    target["candidate"] = _candidate("3")
    assert not follower.refresh()
    assert follower.current.version == "1" and "artifact missing" in follower.last_error
    status = follower.status()
    assert status["refused_version"] == "3" and "artifact missing" in status["refused_reason"]
    assert status["degraded"] and status["model_version"] == "1"
    models["models:/m/3"] = FakeModel(float("nan"))
    assert not follower.refresh() and follower.current.version == "1"
    assert "for the example record" in follower.status()["refused_reason"]
    target["candidate"] = _candidate("2")
    assert follower.refresh() and follower.current.version == "2"
    status = follower.status()
    assert status["model_version"] == "2" and status["refused_version"] is None
    assert status["contract"] == {"dataset": "telco-churn", "fingerprint": TELCO.fingerprint}


def test_a_version_trained_on_another_contract_is_refused_without_being_loaded() -> None:
    loaded: list[str] = []
    target = {"candidate": _candidate("1")}

    def load(uri: str) -> FakeModel:
        loaded.append(uri)
        return FakeModel(0.2)

    follower = ChampionFollower(lambda: target["candidate"], load, 60, TELCO)
    assert follower.refresh()
    gym_tags = {CONTRACT_FINGERPRINT_TAG: GYM.fingerprint, CONTRACT_DATASET_TAG: GYM.dataset}
    for version, tags, words in [
        (
            "2",
            gym_tags,
            f"version 2 was trained on contract gym-members (fingerprint {GYM.fingerprint})",
        ),
        ("3", {}, "version 3 has no recorded data contract"),
    ]:
        target["candidate"] = _candidate(version, tags)
        assert not follower.refresh()
        status = follower.status()
        assert status["model_version"] == "1" and status["refused_version"] == version
        assert words in status["refused_reason"]
        assert (
            f"not contract telco-churn (fingerprint {TELCO.fingerprint})"
            if version == "3"
            else f"not on telco-churn (fingerprint {TELCO.fingerprint})"
            in (status["refused_reason"])
        )
        assert status["refused_reason"].startswith("ContractMismatch")
    assert loaded == ["models:/m/1"]


def test_follower_without_a_champion_reports_why() -> None:
    follower = ChampionFollower(lambda: None, lambda uri: FakeModel(0.1), 60, TELCO)
    assert not follower.refresh()
    assert follower.current is None
    assert "no model version holds the alias" in follower.status()["last_error"]


class _Registry:
    def __init__(self, tags: dict[str, str]) -> None:
        self.tags = tags

    def version(self, version: str):
        return type("Info", (), {"tags": self.tags, "run_id": None})()


def test_pinned_resolver_reads_the_version_and_its_tags() -> None:
    names: list[str] = []

    def registry_for(name: str) -> _Registry:
        names.append(name)
        return _Registry(OURS)

    resolve = pinned_resolver("models:/churn/3", _Registry({}), registry_for)
    assert resolve() == ("3", "models:/churn/3", OURS, None)
    assert names == ["churn"]
    local = pinned_resolver("/models/churn", _Registry({}), registry_for)()
    assert local == ("/models/churn", "/models/churn", None, None)


def _registered(registry: InMemoryModelRegistry, contract) -> str:
    """A version trained (as far as its tags tell) on `contract`; returns its number."""
    run = registry.log_candidate("candidate", FakeModel(0.2), {}, {}, contract=contract)
    return registry.register(run, {})


def test_pinned_run_and_alias_uris_are_checked_by_their_tags() -> None:
    registry = InMemoryModelRegistry("churn", "training")
    ours = _registered(registry, TELCO)
    run_id = registry.version(ours).run_id
    pinned = pinned_resolver(f"runs:/{run_id}/model", registry, lambda name: registry)()
    assert pinned.version == f"runs:/{run_id}/model" and pinned.tags == registry.run_tags(run_id)
    follower = ChampionFollower(lambda: pinned, lambda uri: FakeModel(0.2), 60, TELCO)
    assert follower.refresh() and follower.current.uri == f"runs:/{run_id}/model"
    refused = ChampionFollower(lambda: pinned, lambda uri: FakeModel(0.2), 60, GYM)
    assert not refused.refresh()
    assert refused.status()["refused_reason"].startswith(
        f"ContractMismatch: runs:/{run_id}/model was trained on contract telco-churn"
    )

    alias = pinned_resolver("models:/churn@champion", registry, lambda name: registry)
    assert alias() is None  # nothing holds the alias yet
    registry.promote(ours, "test")
    assert alias() == (
        ours,
        f"models:/churn/{ours}",
        registry.version(ours).tags,
        registry.version(ours).run_id,
    )
    theirs = _registered(registry, GYM)
    registry.promote(theirs, "test")
    follower = ChampionFollower(alias, lambda uri: FakeModel(0.2), 60, TELCO)
    assert not follower.refresh()
    assert follower.status()["refused_version"] == theirs
    assert "trained on contract gym-members" in follower.status()["refused_reason"]


def test_follower_backs_off_while_the_registry_is_down_and_reports_degraded() -> None:
    up = {"registry": True}

    def resolve() -> Candidate:
        if not up["registry"]:
            raise ConnectionError("connection refused")
        return _candidate("1")

    follower = ChampionFollower(resolve, lambda uri: FakeModel(0.2), 10, TELCO)
    assert follower.refresh() and follower.next_wait() == 10
    up["registry"] = False
    waits = []
    for _ in range(6):
        follower.refresh()
        waits.append(follower.next_wait())
    assert waits == [1, 2, 4, 8, 10, 10]
    status = follower.status()
    assert status["ready"] and status["degraded"] and status["consecutive_failures"] == 6
    assert "connection refused" in status["last_error"]
    up["registry"] = True
    follower.refresh()
    assert not follower.status()["degraded"] and follower.next_wait() == 10


@pytest.mark.parametrize("contract", [TELCO, GYM], ids=["telco", "gym"])
def test_check_rows_are_valid_records_covering_every_kind(contract) -> None:
    rows = check_rows(contract)
    model = record_model(contract)
    names = contract.feature_names
    open_rows = []
    for row in rows:
        record = dict(zip(names, row, strict=True))
        if UNSEEN_CATEGORY in row:
            open_rows.append(row)
            continue
        model.model_validate(record)
    columns = {name: {row[i] for row in rows} for i, name in enumerate(names)}
    for feature in contract.features:
        if feature.kind == "categorical" and not feature.is_open:
            assert columns[feature.name] == set(feature.categories), feature.name
        if feature.nullable:
            assert None in columns[feature.name], feature.name
    assert bool(open_rows) == any(f.is_open for f in contract.features)


def test_a_loaded_version_is_kept_out_of_the_collectors_full_passes() -> None:
    """What a load builds is frozen (gc.freeze): a full collection would otherwise walk the
    worker's whole heap and stall requests."""
    gc.unfreeze()
    follower = ChampionFollower(lambda: _candidate("1"), lambda uri: FakeModel(0.2), 60, TELCO)
    try:
        assert follower.refresh()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # leave this test process as it was
