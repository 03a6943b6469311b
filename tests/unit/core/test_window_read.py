"""The prediction store's fast window read: packed categorical fields, decoded exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from churnops.contract import FEATURES, example_record
from churnops.monitoring import prediction_store
from churnops.monitoring.prediction_store import CATEGORICAL_SPECS, unpack_categories

pytestmark = pytest.mark.unit


def _rows(count: int) -> list[dict[str, object]]:
    """Records cycling through every category of every categorical field."""
    rows = []
    for i in range(count):
        record = dict(example_record())
        for spec in CATEGORICAL_SPECS:
            record[spec.name] = spec.categories[i % len(spec.categories)]
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


def test_packed_fields_fit_a_signed_64_bit_integer() -> None:
    radix = np.prod([len(spec.categories) + 1 for spec in CATEGORICAL_SPECS], dtype=object)
    assert radix < 2**63


def test_unpack_inverts_the_mixed_radix_packing() -> None:
    rng = np.random.default_rng(0)
    codes = {s.name: rng.integers(0, len(s.categories), 50) for s in CATEGORICAL_SPECS}
    packed, weight = np.zeros(50, dtype=np.int64), 1
    for spec in CATEGORICAL_SPECS:
        packed += codes[spec.name] * weight
        weight *= len(spec.categories) + 1
    fields = unpack_categories(packed)
    assert fields is not None
    for spec in CATEGORICAL_SPECS:
        assert list(fields[spec.name].codes) == list(codes[spec.name])
        assert list(fields[spec.name].categories) == list(spec.categories)


def test_unpack_reports_a_value_outside_the_contract() -> None:
    unknown_gender = len(CATEGORICAL_SPECS[0].categories)
    assert unpack_categories(np.array([0, unknown_gender])) is None


def test_window_read_returns_the_stored_values_with_categorical_fields(tmp_path) -> None:
    engine = prediction_store.connect(f"sqlite:///{tmp_path / 'p.db'}")
    rows = _rows(12)
    prediction_store.write_predictions(engine, rows)
    prediction_store.write_feedback(engine, [{"request_id": "r3", "Churn": "Yes"}])
    window = prediction_store.read_predictions(engine, since_ts=0.0, until_ts=10.0)
    assert list(window["request_id"]) == [f"r{i}" for i in range(1, 11)]
    for spec in FEATURES:
        expected = [row[spec.name] for row in rows[1:11]]
        assert window[spec.name].tolist() == pytest.approx(expected, nan_ok=True), spec.name
    assert all(isinstance(window[s.name].dtype, pd.CategoricalDtype) for s in CATEGORICAL_SPECS)
    assert window["Churn"].tolist()[2] == "Yes" and window["Churn"].isna().sum() == 9


def test_a_value_outside_the_contract_is_read_as_stored(tmp_path) -> None:
    engine = prediction_store.connect(f"sqlite:///{tmp_path / 'p.db'}")
    prediction_store.write_predictions(engine, _rows(3))
    with engine.begin() as connection:
        connection.execute(text("UPDATE predictions SET Contract = 'Ten year' WHERE ts = 1"))
    window = prediction_store.read_predictions(engine)
    assert window["Contract"].tolist() == ["Month-to-month", "Ten year", "Two year"]
    assert window["gender"].tolist() == ["Female", "Male", "Female"]
