"""The Telco demo data, file reading and cleaning under the default (Telco) contract."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnops.contract import ContractError, telco_contract
from churnops.data import quality
from churnops.data.cleaning import clean_customers
from churnops.data.sources import read_customer_file
from churnops.data.synthetic import DriftSpec, generate_customers
from churnops.model.scoring import frame_to_rows, rows_to_frame

pytestmark = pytest.mark.unit
TELCO = telco_contract()


def test_rows_to_frame_keeps_contract_order_and_nan_for_blank() -> None:
    example = TELCO.example_record()
    row = [example[name] for name in TELCO.feature_names]
    row[TELCO.feature_names.index("TotalCharges")] = None
    frame = rows_to_frame([row], TELCO)
    assert tuple(frame.columns) == TELCO.feature_names
    assert math.isnan(frame.loc[0, "TotalCharges"])
    assert frame_to_rows(frame, TELCO) == [row]


def test_generator_is_deterministic_per_seed() -> None:
    pd.testing.assert_frame_equal(generate_customers(500, seed=3), generate_customers(500, seed=3))
    assert not generate_customers(500, seed=3).equals(generate_customers(500, seed=4))


def test_generator_has_a_realistic_signal_and_blank_totals_for_new_customers() -> None:
    frame = generate_customers(20_000, seed=1)
    assert len(frame) == 20_000 and tuple(frame.columns) == TELCO.columns
    assert 0.15 < (frame["Churn"] == "Yes").mean() < 0.45
    month_to_month = frame["Contract"] == "Month-to-month"
    churn = frame["Churn"] == "Yes"
    assert churn[month_to_month].mean() > 2 * churn[~month_to_month].mean()
    assert (frame["TotalCharges"].isna() == (frame["tenure"] == 0)).all()


def test_drift_knobs_move_distributions_the_stated_way() -> None:
    base = generate_customers(10_000, seed=2)
    moved = generate_customers(
        10_000, seed=2, drift=DriftSpec(tenure_scale=0.5, monthly_charges_shift=20)
    )
    assert moved["tenure"].mean() < 0.7 * base["tenure"].mean()
    assert moved["MonthlyCharges"].mean() > base["MonthlyCharges"].mean() + 15
    with pytest.raises(ValueError, match="n_rows"):
        generate_customers(0)


def _telco_csv(path: Path, rows: int = 50) -> Path:
    frame = generate_customers(rows, seed=9).astype(object)
    frame["TotalCharges"] = [
        " " if isinstance(v, float) and np.isnan(v) else str(v) for v in frame["TotalCharges"]
    ]
    frame.loc[0, "TotalCharges"] = " "
    frame.to_csv(path, index=False)
    return path


def test_a_byte_order_mark_from_a_spreadsheet_export_is_not_part_of_the_first_header(
    tmp_path: Path,
) -> None:
    path = _telco_csv(tmp_path / "telco.csv")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    raw = read_customer_file(path)
    assert raw.columns[0] == "customerID"
    assert len(clean_customers(raw, str(path), TELCO).frame) == len(raw)


def test_telco_style_csv_cleans_to_typed_columns(tmp_path: Path) -> None:
    raw = read_customer_file(_telco_csv(tmp_path / "telco.csv"))
    clean = clean_customers(raw, "telco.csv", TELCO).frame
    assert clean["tenure"].dtype == np.int64
    assert clean["MonthlyCharges"].dtype == np.float64
    assert isinstance(clean["Contract"].dtype, pd.CategoricalDtype)
    assert clean["Churn"].dtype == np.int8 and set(clean["Churn"]) == {0, 1}
    assert math.isnan(clean.loc[0, "TotalCharges"])
    for rule in (quality.schema_matches, quality.no_unexpected_nulls, quality.values_in_range):
        assert rule(clean, TELCO).passed, rule.__name__


def test_the_lower_case_telco_header_variant_cleans_like_the_original(tmp_path: Path) -> None:
    original = read_customer_file(_telco_csv(tmp_path / "telco.csv"))
    lower = original.rename(columns=str.lower)
    lower["contract"] = lower["contract"].str.upper()  # values match case-insensitively too
    lower["extra notes"] = "ignored"
    expected = clean_customers(original, "telco.csv", TELCO).frame
    pd.testing.assert_frame_equal(clean_customers(lower, "lower.csv", TELCO).frame, expected)


def test_csv_errors_name_file_line_and_column(tmp_path: Path) -> None:
    path = _telco_csv(tmp_path / "bad.csv")
    raw = read_customer_file(path)
    raw.loc[2, "tenure"] = "abc"
    with pytest.raises(ContractError, match=r"bad\.csv: column 'tenure' line 4"):
        clean_customers(raw, str(path), TELCO)
    raw = read_customer_file(path).drop(columns=["Contract"])
    with pytest.raises(ContractError, match=r"missing column.*Contract"):
        clean_customers(raw, str(path), TELCO)
    raw = read_customer_file(path)
    raw.loc[0, "PaymentMethod"] = "Bitcoin"
    with pytest.raises(ContractError, match="'PaymentMethod' line 2"):
        clean_customers(raw, str(path), TELCO)
    raw = read_customer_file(path)
    raw.loc[5, "Churn"] = "Maybe"
    with pytest.raises(ContractError, match=r"column 'Churn' line 7: must be one of"):
        clean_customers(raw, str(path), TELCO)


@pytest.mark.parametrize(
    ("column", "message"),
    [("customerID", "at most 64 characters"), ("gender", "line 3"), ("tenure", "line 3")],
)
def test_huge_fields_fail_naming_file_line_and_column_briefly(
    tmp_path: Path, column: str, message: str
) -> None:
    path = _telco_csv(tmp_path / "huge.csv")
    raw = read_customer_file(path)
    raw.loc[1, column] = "9" * 5_000_000
    raw.to_csv(path, index=False)
    with pytest.raises(ContractError, match=rf"huge\.csv: column '{column}' line 3") as info:
        clean_customers(read_customer_file(path), str(path), TELCO)
    assert message in str(info.value)
    assert len(str(info.value)) < 1_000


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "file is empty"),
        ("latin1.csv", "customerID,gender\nC1,F\xe9male\n".encode("latin-1"), "not UTF-8"),
        ("data.xlsx", b"whatever", "unsupported file type"),
    ],
)
def test_unreadable_files_fail_naming_the_file(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ContractError, match=message) as info:
        read_customer_file(path)
    assert name in str(info.value)


def test_parquet_round_trip_and_duplicates_dropped(tmp_path: Path) -> None:
    frame = generate_customers(200, seed=4)
    frame = pd.concat([frame, frame.iloc[:5]], ignore_index=True)
    frame.to_parquet(tmp_path / "c.parquet")
    result = clean_customers(read_customer_file(tmp_path / "c.parquet"), "c.parquet", TELCO)
    assert len(result.frame) == 200 and result.duplicates_dropped == 5
    assert quality.unique_customer_ids(result.frame, TELCO).passed
