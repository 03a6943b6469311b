"""Simulated traffic: Telco demo customers from the generator, any other contract's customers
drawn from the champion's reference sample; every record is a valid request of the contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops.contract import telco_contract
from churnops.data.synthetic import is_demo_contract
from churnops.records import record_model
from launcher.simulator import (
    reference_traffic,
    simulate,
    synthetic_traffic,
)
from tests.unit.serving.contracts import GYM

pytestmark = pytest.mark.unit


def _reference(rows: int = 400) -> pd.DataFrame:
    """What training stores for monitoring: cleaned holdout features and the model's scores."""
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "age": rng.integers(16, 99, rows),
            "has pass": rng.integers(0, 2, rows).astype(float),
            "club": pd.Categorical(rng.choice(["Leeds", "York", "Hull"], rows)),
            "plan": pd.Categorical(rng.choice(["basic", "plus"], rows)),
            "visits": np.where(rng.random(rows) < 0.1, np.nan, rng.uniform(0, 30, rows)),
            "churn_probability": rng.uniform(0, 1, rows),
        }
    )


def test_traffic_for_a_contract_without_a_generator_is_valid_requests_with_labels() -> None:
    traffic = reference_traffic(GYM, _reference(), 300, seed=7, drifted=False)
    model = record_model(GYM)
    for record in traffic.records:
        model.model_validate(record)  # booleans true/false, NaN as null, no id field
    assert all(isinstance(r["has pass"], bool) for r in traffic.records)
    assert any(r["visits"] is None for r in traffic.records)
    assert set(traffic.labels) == {"1", "0"} and len(traffic.labels) == 300


def test_drifted_reference_traffic_over_samples_the_riskiest_customers() -> None:
    reference = _reference()
    calm = reference_traffic(GYM, reference, 2000, seed=1, drifted=False)
    drifted = reference_traffic(GYM, reference, 2000, seed=1, drifted=True)
    assert (
        np.mean([x == "1" for x in drifted.labels]) > np.mean([x == "1" for x in calm.labels]) + 0.1
    )


def test_a_reference_of_another_contract_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"lacks.*gym-members"):
        reference_traffic(GYM, _reference().drop(columns=["club"]), 10, seed=1, drifted=False)


def test_simulating_a_contract_without_a_generator_needs_the_reference() -> None:
    assert not is_demo_contract(GYM)
    with pytest.raises(ValueError, match="reference sample"):
        simulate("http://127.0.0.1:9", 10, contract=GYM)


def test_telco_traffic_comes_from_the_generator_with_unique_ids() -> None:
    contract = telco_contract()
    assert is_demo_contract(contract)
    traffic = synthetic_traffic(contract, 50, seed=3, drifted=True)
    model = record_model(contract)
    for record in traffic.records:
        model.model_validate(record)
    ids = [record["customerID"] for record in traffic.records]
    assert len(set(ids)) == 50 and all(i.startswith("sim3-") for i in ids)
    assert set(traffic.labels) <= {"Yes", "No"}
