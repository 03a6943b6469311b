"""The prediction store's fast window read: packed categorical fields, decoded exactly; its
tables follow the contract and refuse a store made under another one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from churnops.contract import telco_contract
from churnops.monitoring import prediction_store
from churnops.monitoring.prediction_store import (
    StoreSchemaError,
    store_schema,
    unpack_categories,
)
from tests.unit.serving.contracts import GYM

pytestmark = pytest.mark.unit

TELCO = telco_contract()
PACKED = store_schema(TELCO).packed_features


def _rows(count: int) -> list[dict[str, object]]:
    """Records cycling through every category of every categorical field."""
    rows = []
    for i in range(count):
        record = dict(TELCO.example_record())
        for feature in PACKED:
            record[feature.name] = feature.categories[i % len(feature.categories)]
        rows.append(
            {
                **record,
                "request_id": f"r{i}",
                "ts": float(i),
                "model_version": "1",
                "customerID": f"c{i}",
                "TotalCharges": float("nan") if i == 2 else 10.0 * i,
                "churn_probability": i / count,
                "churn": "No",
            }
        )
    return rows


def test_every_closed_telco_categorical_is_packed_within_a_signed_64_bit_integer() -> None:
    assert {f.name for f in PACKED} == set(TELCO.categorical)
    radix = np.prod([len(f.categories) + 1 for f in PACKED], dtype=object)
    assert radix < 2**63


def test_unpack_inverts_the_mixed_radix_packing() -> None:
    rng = np.random.default_rng(0)
    codes = {f.name: rng.integers(0, len(f.categories), 50) for f in PACKED}
    packed, weight = np.zeros(50, dtype=np.int64), 1
    for feature in PACKED:
        packed += codes[feature.name] * weight
        weight *= len(feature.categories) + 1
    fields = unpack_categories(packed, PACKED)
    assert fields is not None
    for feature in PACKED:
        assert list(fields[feature.name].codes) == list(codes[feature.name])
        assert list(fields[feature.name].categories) == list(feature.categories)


def test_unpack_reports_a_value_outside_the_contract() -> None:
    unknown_first = len(PACKED[0].categories)
    assert unpack_categories(np.array([0, unknown_first]), PACKED) is None


def test_window_read_returns_the_stored_values_with_categorical_fields(tmp_path) -> None:
    engine = prediction_store.connect(f"sqlite:///{tmp_path / 'p.db'}", TELCO)
    rows = _rows(12)
    prediction_store.write_predictions(engine, TELCO, rows)
    prediction_store.write_feedback(engine, TELCO, [{"request_id": "r3", "Churn": "yes"}])
    window = prediction_store.read_predictions(engine, 0.0, 10.0, contract=TELCO)
    assert list(window["request_id"]) == [f"r{i}" for i in range(1, 11)]
    for feature in TELCO.features:
        expected = [row[feature.name] for row in rows[1:11]]
        assert window[feature.name].tolist() == pytest.approx(expected, nan_ok=True), feature.name
    assert all(isinstance(window[n].dtype, pd.CategoricalDtype) for n in TELCO.categorical)
    # Feedback in any accepted spelling is stored as the target's canonical label.
    assert window["Churn"].tolist()[2] == "Yes" and window["Churn"].isna().sum() == 9


def test_a_value_outside_the_contract_is_read_as_stored(tmp_path) -> None:
    engine = prediction_store.connect(f"sqlite:///{tmp_path / 'p.db'}", TELCO)
    prediction_store.write_predictions(engine, TELCO, _rows(3))
    with engine.begin() as connection:
        connection.execute(text("UPDATE predictions SET Contract = 'Ten year' WHERE ts = 1"))
    window = prediction_store.read_predictions(engine, contract=TELCO)
    assert window["Contract"].tolist() == ["Month-to-month", "Ten year", "Two year"]
    assert window["gender"].tolist() == ["Female", "Male", "Female"]


def _gym_rows() -> list[dict[str, object]]:
    return [
        {
            "request_id": f"q{i}",
            "ts": float(i),
            "model_version": "2",
            "row_id": f"r{i}",
            "age": 20 + i,
            "has pass": i % 2 == 0,
            "club": ["Leeds", "York", "a club with a long name"][i % 3],
            "plan": "plus" if i else "basic",
            "visits": None if i == 1 else 3.5 * i,
            "churn_probability": 0.1 * i,
            "churn": "1" if i > 2 else "0",
        }
        for i in range(5)
    ]


def test_a_non_telco_store_follows_its_contract(tmp_path) -> None:
    engine = prediction_store.connect(f"sqlite:///{tmp_path / 'gym.db'}", GYM)
    prediction_store.write_predictions(engine, GYM, _gym_rows())
    stored = prediction_store.write_feedback(
        engine, GYM, [{"request_id": "q0", "left": True}, {"row_id": "r3", "left": "0"}]
    )
    assert stored == 2 and prediction_store.count_predictions(engine) == 5
    window = prediction_store.read_predictions(engine, contract=GYM)
    assert window["has pass"].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]  # like cleaned data
    assert window["club"].tolist()[2] == "a club with a long name"
    assert pd.isna(window["visits"][1]) and window["age"].tolist() == [20, 21, 22, 23, 24]
    assert window["left"].fillna("-").tolist() == ["1", "-", "-", "0", "-"]
    labelled = prediction_store.labelled_records(engine, GYM)
    assert list(labelled.columns) == list(GYM.required_columns())  # no id column to send
    assert labelled["left"].tolist() == ["1", "0"]
    with pytest.raises(ValueError, match="left"):
        prediction_store.write_feedback(engine, GYM, [{"request_id": "q1", "left": "maybe"}])


def test_a_store_made_under_another_contract_is_refused_by_name(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    prediction_store.connect(url, TELCO)
    with pytest.raises(StoreSchemaError, match=r"'predictions'.*'gym-members'"):
        prediction_store.connect(url, GYM)
