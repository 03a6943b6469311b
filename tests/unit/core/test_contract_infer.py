"""`infer_contract` drafts a contract a reviewer can trust: kinds, target, id, limits, errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from churnops.contract import dump_contract, load_contract, parse_contract
from churnops.contract.infer import DataProfile, InferError, draft_contract, infer_contract
from churnops.data.cleaning import contract_problems
from churnops.data.synthetic import generate_customers
from examples.saas.generate import generate as generate_saas
from examples.subscriptions.generate import generate as generate_subscriptions

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _frame(columns: dict[str, list[object]]) -> pd.DataFrame:
    """As a CSV is read: every cell text, blanks as ""."""
    return pd.DataFrame({name: [str(v) for v in values] for name, values in columns.items()})


def _kinds(result) -> dict[str, str]:
    return {feature.name: feature.kind for feature in result.contract.features}


MIXED = _frame(
    {
        "member_since_months": [1, 5, 12, 40, 7, 3, 22, 9],
        "spend": [9.5, 12.25, 0.0, 30.1, 8.0, 7.75, 19.99, 5.5],
        "plan": ["gold", "basic", "basic", "gold", "silver", "basic", "gold", "silver"],
        "autopay": ["true", "false", "true", "true", "false", "false", "true", "false"],
        "promo": ["Y", "N", "N", "N", "Y", "N", "N", "N"],
        "opted_in": [0, 1, 1, 0, 1, 1, 0, 1],
        "rating": [4, "", 5, 3, "", 4, 2, 5],
        "Churn": ["No", "Yes", "No", "No", "Yes", "No", "No", "Yes"],
    }
)


def test_kinds_categories_ranges_and_nullability_are_drafted() -> None:
    result = infer_contract(MIXED, dataset="mixed")
    assert _kinds(result) == {
        "member_since_months": "integer",
        "spend": "numeric",
        "plan": "categorical",
        "autopay": "boolean",
        "promo": "boolean",
        "opted_in": "boolean",
        "rating": "integer",
    }
    by_name = result.contract.by_name
    assert by_name["plan"].categories == ("basic", "gold", "silver")
    assert (by_name["spend"].minimum, by_name["spend"].maximum) == (0.0, 30.1)
    assert (by_name["member_since_months"].minimum, by_name["member_since_months"].maximum) == (
        1,
        40,
    )
    assert by_name["rating"].nullable and not by_name["spend"].nullable
    assert any("'rating' is nullable: blank in 2 of 8 rows" in note for note in result.notes)
    assert any("widen" in note for note in result.notes)


def test_the_draft_is_valid_yaml_and_the_data_it_came_from_passes_its_check() -> None:
    result = infer_contract(MIXED, dataset="mixed")
    text = dump_contract(result.contract, "draft")
    assert parse_contract(yaml.safe_load(text), "draft.yaml") == result.contract
    assert contract_problems(MIXED, "mixed.csv", result.contract) == []


@pytest.mark.parametrize(
    ("name", "values", "positive"),
    [
        ("Exited", ["0", "1", "0", "0"], 1),
        ("is_churn", ["false", "true", "false", "false"], "true"),
        ("Attrition_Flag", ["Existing Customer", "Attrited Customer"] * 2, "Attrited Customer"),
        ("Churned", ["Not churned", "Churned", "Not churned", "Not churned"], "Churned"),
        # Neither value reads as churn: the rarer one, and a note asks the reviewer to check it.
        ("label", ["stay", "go", "stay", "stay"], "go"),
    ],
)
def test_target_is_guessed_by_name_and_its_positive_value_by_meaning(
    name: str, values: list[str], positive: object
) -> None:
    frame = _frame({"usage": [1.5, 2.5, 3.5, 4.5], name: values})
    result = infer_contract(frame, dataset="d")
    assert result.contract.target.name == name
    assert result.contract.target.positive == (positive,)
    assert any(f"target {name!r}: positive" in note for note in result.notes)


def test_a_missing_target_asks_for_target_and_a_named_one_is_used() -> None:
    frame = _frame({"usage": [1, 2, 3], "outcome": ["a", "b", "a"]})
    with pytest.raises(InferError, match="--target"):
        infer_contract(frame, dataset="d")
    result = infer_contract(frame, dataset="d", target="OUTCOME")
    assert result.contract.target.name == "outcome"
    with pytest.raises(InferError, match="'nope' is not in the file; its columns are usage"):
        infer_contract(frame, dataset="d", target="nope")


def test_a_constant_target_is_refused_with_its_value() -> None:
    frame = _frame({"usage": [1, 2, 3], "churn": ["No", "No", " No "]})
    with pytest.raises(InferError, match=r"target 'churn' has one value \('No'\) in every row"):
        infer_contract(frame, dataset="d")


def test_a_many_valued_target_is_refused() -> None:
    frame = _frame({"usage": [1, 2, 3], "churn": ["low", "mid", "high"]})
    with pytest.raises(InferError, match="has 3 distinct values"):
        infer_contract(frame, dataset="d")


def test_id_is_guessed_by_uniqueness_and_name_and_can_be_chosen_or_refused() -> None:
    rows = 80
    frame = _frame(
        {
            "RowNumber": list(range(1, rows + 1)),
            "CustomerId": [f"C{i:05d}" for i in range(rows)],
            "email": [f"user{i}@example.com" for i in range(rows)],
            "tenure": [i % 7 for i in range(rows)],
            "churn": ["yes" if i % 4 == 0 else "no" for i in range(rows)],
        }
    )
    result = infer_contract(frame, dataset="d")
    assert result.contract.id_column == "CustomerId"
    # A row counter and a per-row text value cannot generalise: left out, with the reason.
    assert result.contract.feature_names == ("tenure",)
    assert any("'RowNumber' left out: it numbers the rows" in note for note in result.notes)
    assert any("'email' left out" in note for note in result.notes)
    chosen = infer_contract(frame, dataset="d", id_column="email")
    assert chosen.contract.id_column == "email"
    derived = infer_contract(frame, dataset="d", no_id=True)
    assert derived.contract.id_column is None and derived.contract.id_name == "row_id"


def test_without_a_unique_column_ids_are_derived() -> None:
    result = infer_contract(MIXED, dataset="mixed")
    assert result.contract.id_column is None
    assert any("no id column" in note for note in result.notes)


def test_above_the_cardinality_limit_a_categorical_is_open() -> None:
    rows = 60
    frame = _frame(
        {
            "city": [f"city-{i % 12}" for i in range(rows)],
            "tier": ["a", "b", "c"] * (rows // 3),
            "churn": ["1", "0", "0"] * (rows // 3),
        }
    )
    result = infer_contract(frame, dataset="d", max_categories=10)
    city, tier = result.contract.by_name["city"], result.contract.by_name["tier"]
    assert city.kind == "categorical" and city.categories is None and city.is_open
    assert tier.categories == ("a", "b", "c") and not tier.is_open
    assert any("'city' is an open categorical: more than 10" in note for note in result.notes)


def test_odd_headers_are_renamed_with_the_header_kept_as_alias() -> None:
    frame = _frame({"Monthly Charges ($)": [1.5, 2.5, 3.0], "Churn": ["Yes", "No", "No"]})
    feature = infer_contract(frame, dataset="d").contract.features[0]
    assert feature.name == "monthly_charges"
    assert feature.aliases == ("Monthly Charges ($)",)


def test_missing_value_markers_in_a_numeric_column_become_missing_values() -> None:
    frame = _frame(
        {
            "age": [31, "NA", 45, 52],
            "score": ["?", 1.5, "", 2.25],
            "churn": ["yes", "no", "no", "yes"],
        }
    )
    result = infer_contract(frame, dataset="d")
    contract = result.contract
    assert contract.missing_values == ("?", "NA")
    age, score = contract.by_name["age"], contract.by_name["score"]
    assert (age.kind, age.nullable, age.minimum, age.maximum) == ("integer", True, 31, 52)
    assert (score.kind, score.nullable) == ("numeric", True)
    assert any("missing_values: '?', 'NA'" in note for note in result.notes)
    assert contract_problems(frame, "d.csv", contract) == []


def test_a_marker_another_column_uses_as_a_value_is_not_a_missing_value() -> None:
    frame = _frame(
        {
            "age": [31, "NA", 45, 52],
            "region": ["NA", "EU", "EU", "NA"],
            "churn": ["yes", "no", "no", "yes"],
        }
    )
    result = infer_contract(frame, dataset="d")
    assert result.contract.missing_values == ()
    assert result.contract.by_name["age"].kind == "categorical"
    assert result.contract.by_name["region"].categories == ("EU", "NA")
    assert any("'age' is numeric except for 'NA'" in note for note in result.notes)
    assert contract_problems(frame, "d.csv", result.contract) == []


def test_a_column_of_markers_only_is_not_numeric() -> None:
    frame = _frame({"age": ["NA", "NA", "", "NA"], "churn": ["yes", "no", "no", "yes"]})
    contract = infer_contract(frame, dataset="d").contract
    assert contract.missing_values == ()
    assert contract.by_name["age"].kind == "categorical"


def test_case_variants_of_a_category_are_one_category() -> None:
    frame = _frame({"plan": ["Gold", "gold", "Gold", "Basic"], "churn": ["1", "0", "0", "1"]})
    feature = infer_contract(frame, dataset="d").contract.by_name["plan"]
    assert feature.categories == ("Basic", "Gold")


def test_chunked_profile_drafts_the_same_contract_as_the_whole_frame() -> None:
    frame = generate_saas(3000, seed=2).astype(str)
    profile = DataProfile()
    for start in range(0, len(frame), 700):
        profile.add(frame.iloc[start : start + 700])
    chunked = draft_contract(profile, dataset="saas")
    assert chunked.contract == infer_contract(frame, dataset="saas").contract


def test_one_column_file_hints_at_the_separator() -> None:
    frame = pd.DataFrame({"a;b;churn": ["1;2;yes"]})
    with pytest.raises(InferError, match="separated by ';'"):
        infer_contract(frame, dataset="d")


def test_typed_telco_frame_drafts_its_target_and_id() -> None:
    result = infer_contract(generate_customers(2000, seed=1), dataset="telco")
    assert result.contract.target.name == "Churn"
    assert result.contract.target.positive == ("Yes",)
    assert result.contract.id_column == "customerID"
    assert result.contract.by_name["TotalCharges"].nullable


@pytest.mark.parametrize(
    ("example", "generate"),
    [("subscriptions", generate_subscriptions), ("saas", generate_saas)],
)
def test_each_examples_reviewed_contract_agrees_with_its_draft(example: str, generate) -> None:
    frame = generate(4000).astype(str).replace("nan", "")
    draft = infer_contract(frame, dataset=example).contract
    reviewed = load_contract(EXAMPLES / example / "contract.yaml")
    assert {f.name: f.kind for f in draft.features} == {f.name: f.kind for f in reviewed.features}
    assert (draft.id_column, draft.target.name) == (reviewed.id_column, reviewed.target.name)
    assert draft.target.positive == reviewed.target.positive
    for feature in draft.features:
        listed = reviewed.by_name[feature.name].categories
        if feature.categories and listed:
            assert set(feature.categories) <= set(listed), feature.name
    assert contract_problems(frame, f"{example}.csv", reviewed) == []


def test_ranges_are_rounded_outwards_so_the_file_passes_its_own_draft() -> None:
    frame = _frame(
        {
            "balance": [1234564.7, 10.25, 999.5, 20.0],
            "rate": [-0.00123456789, 0.5, 0.25, 0.125],
            "churn": ["yes", "no", "no", "yes"],
        }
    )
    contract = infer_contract(frame, dataset="d").contract
    balance, rate = contract.by_name["balance"], contract.by_name["rate"]
    assert balance.maximum == 1234570.0 and balance.minimum == 10.25
    assert rate.minimum == -0.00123457
    assert contract_problems(frame, "d.csv", contract) == []


def test_non_ascii_headers_keep_their_names_or_are_normalised_apart() -> None:
    frame = _frame(
        {
            "年齢": [31, 45, 52, 28],
            "地域": ["東", "西", "東", "西"],
            "Größe": [1.5, 1.75, 1.6, 1.8],
            "Größe (cm)": [150, 175, 160, 180],
            "größe cm": ["s", "m", "s", "l"],
            "$$": [1, 2, 2, 1],
            "churn": ["yes", "no", "no", "yes"],
        }
    )
    result = infer_contract(frame, dataset="d")
    contract = result.contract
    assert contract.feature_names == ("年齢", "地域", "Größe", "größe_cm", "größe_cm_2", "column_6")
    assert contract.by_name["年齢"].aliases == ()
    assert contract.by_name["größe_cm"].aliases == ("Größe (cm)",)
    assert contract.by_name["größe_cm_2"].aliases == ("größe cm",)
    assert contract.by_name["column_6"].aliases == ("$$",)
    assert any("'$$' is called 'column_6'" in note for note in result.notes)
    assert contract_problems(frame, "d.csv", contract) == []


def test_a_renamed_header_never_takes_the_name_of_another_column() -> None:
    frame = _frame(
        {"plan type": ["a", "b", "a"], "Plan_Type": ["x", "y", "x"], "churn": ["1", "0", "1"]}
    )
    assert infer_contract(frame, dataset="d").contract.feature_names == ("plan_type_2", "Plan_Type")


@pytest.mark.parametrize(("values", "example"), [(["Y", "Y", "N"], True), (["0", "0", "1"], False)])
def test_a_boolean_example_is_its_most_common_value(values: list[str], example: bool) -> None:
    frame = _frame({"promo": values, "churn": ["yes", "no", "no"]})
    assert infer_contract(frame, dataset="d").contract.by_name["promo"].example is example
