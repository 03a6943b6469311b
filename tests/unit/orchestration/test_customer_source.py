"""The customer source: a user's file plus labelled production records, whatever its headers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from churnops.contract import ContractError, telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.production import with_production_records
from churnops.data.synthetic import generate_customers
from churnops.monitoring import prediction_store
from orchestration.resources import CustomerSource, PredictionStore

pytestmark = pytest.mark.unit
TELCO = telco_contract()


def _labelled_store(url: str, file_rows: pd.DataFrame) -> None:
    """Two served customers with labels: one also in the file (relabelled), one new."""
    engine = prediction_store.connect(url, TELCO)
    known = file_rows.iloc[0]
    customers = [
        {**TELCO.example_record(), "customerID": known["customerID"], "tenure": 3},
        {**TELCO.example_record(), "customerID": "served-only", "tenure": 50},
    ]
    answered = [
        {
            "request_id": f"q{i}",
            "ts": float(i),
            "model_version": "1",
            **customer,
            "churn_probability": 0.4,
            "churn": "No",
        }
        for i, customer in enumerate(customers)
    ]
    prediction_store.write_predictions(engine, TELCO, answered)
    flipped = "No" if known["Churn"] == "Yes" else "Yes"
    labels = [
        {"customerID": known["customerID"], "Churn": flipped},
        {"customerID": "served-only", "Churn": "Yes"},
    ]
    assert prediction_store.write_feedback(engine, TELCO, labels) == 2


def test_a_lower_case_header_file_and_labelled_production_records_load_as_one_table(
    tmp_path: Path,
) -> None:
    file_rows = generate_customers(60, seed=11)
    path = tmp_path / "telco_lower.csv"
    file_rows.rename(columns=str.lower).assign(notes="kept").to_csv(path, index=False)
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    _labelled_store(url, file_rows)
    source = CustomerSource(
        path=str(path),
        synthetic_rows=10,
        seed=0,
        prediction_store=PredictionStore(url=url),
        window_days=0,
    )
    raw = source.load(TELCO)
    assert len(raw) == 62
    # The labelled predictions were logged in 1970: a 90-day window leaves them out.
    recent = source.model_copy(update={"window_days": 90.0})
    assert len(recent.load(TELCO)) == 60 and recent.production_records(TELCO).empty
    assert "churn" not in raw.columns and "tenure" in raw.columns  # one column per field
    result = clean_customers(raw, source.name, TELCO)
    frame = result.frame.set_index("customerID")
    assert len(frame) == 61 and result.duplicates_dropped == 1
    known = file_rows.iloc[0]
    assert frame.loc[known["customerID"], "tenure"] == 3  # the production row wins
    assert frame.loc[known["customerID"], "Churn"] == int(known["Churn"] == "No")
    assert frame.loc["served-only", "Churn"] == 1 and frame.loc["served-only", "tenure"] == 50


def test_a_bad_production_record_names_the_store_and_its_row() -> None:
    raw = generate_customers(20, seed=2).rename(columns=str.lower)
    production = generate_customers(3, seed=3).astype(object)
    production.loc[1, "tenure"] = -4
    with pytest.raises(ContractError, match=r"^prediction store: column 'tenure' row 2: must be"):
        with_production_records(raw, production, TELCO)


def test_a_file_with_broken_columns_is_left_for_cleaning_to_report() -> None:
    raw = generate_customers(20, seed=2).drop(columns=["tenure"])
    production = generate_customers(3, seed=3)
    assert with_production_records(raw, production, TELCO) is raw
    with pytest.raises(ContractError, match="missing column"):
        clean_customers(with_production_records(raw, production, TELCO), "f.csv", TELCO)
