"""Data the Telco contract never saw: no id column, 0/1 and true/false targets, boolean
features in many spellings, open categories, header aliases, every problem with its line, and
both recipes trained and scored under such a contract."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from churnops.contract import Contract, ContractError, derive_row_id, parse_contract
from churnops.data import quality
from churnops.data.cleaning import clean_customers, contract_problems
from churnops.data.split import stratified_split
from churnops.model import recipes, scoring
from churnops.model.evaluation import evaluate_scores
from churnops.model.gate import GateRules, judge_challenger
from churnops.model.slices import slice_specs

pytestmark = pytest.mark.unit

# No id column, a numeric 0/1 target, a boolean, an open and a closed categorical.
SAAS: Contract = parse_contract(
    {
        "dataset": "saas-accounts",
        "target": {"name": "churned", "positive": [1], "negative": [0], "aliases": ["Churn?"]},
        "features": [
            {"name": "seats", "kind": "integer", "minimum": 1, "maximum": 10_000},
            {"name": "monthly_spend", "kind": "numeric", "minimum": 0, "nullable": True},
            {"name": "plan", "kind": "categorical", "categories": ["basic", "pro"]},
            {"name": "region", "kind": "categorical"},
            {"name": "auto_renew", "kind": "boolean", "aliases": ["Auto Renew"]},
        ],
        "slices": ["plan", "seats:5,20"],
    },
    "saas.yaml",
)

# An id column with an alias and a true/false target.
GYM: Contract = parse_contract(
    {
        "dataset": "gym",
        "id_column": "member_id",
        "id_aliases": ["Member"],
        "target": {"name": "cancelled", "positive": [True], "negative": [False]},
        "features": [{"name": "visits", "kind": "integer", "minimum": 0}],
    },
    "gym.yaml",
)


def _saas_raw(rows: int, seed: int = 0) -> pd.DataFrame:
    """CSV-like text in mixed spellings, with a churn signal (few seats, no auto-renew)."""
    rng = np.random.default_rng(seed)
    seats = rng.integers(1, 60, rows)
    renew = rng.random(rows) < 0.5
    region = rng.choice(["north", "south", "east", "west"], rows)
    logit = 1.2 - 0.06 * seats - 1.5 * renew + 0.8 * (region == "west")
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    spend = np.round(seats * rng.uniform(8, 12, rows), 2).astype(str)
    spend[::9] = ""
    return pd.DataFrame(
        {
            "Seats": seats.astype(str),
            "monthly_spend": spend,
            "PLAN": rng.choice(["basic", "Pro", "PRO", "pro"], rows),
            "region": region,
            "Auto Renew": np.where(renew, rng.choice(["yes", "TRUE", "1"], rows), "no"),
            "Churn?": np.where(churned, rng.choice(["1", "1.0"], rows), "0"),
        }
    )


@pytest.fixture(scope="module")
def saas() -> pd.DataFrame:
    return clean_customers(_saas_raw(1200), "saas.csv", SAAS).frame


def test_headers_match_by_alias_and_case_and_values_are_typed(saas: pd.DataFrame) -> None:
    assert tuple(saas.columns) == ("row_id", "seats", "monthly_spend", "plan", "region",
                                   "auto_renew", "churned")  # fmt: skip
    assert saas["seats"].dtype == np.int64 and saas["churned"].dtype == np.int8
    assert list(saas["plan"].cat.categories) == ["basic", "pro"]
    assert list(saas["region"].cat.categories) == ["east", "north", "south", "west"]
    assert saas["auto_renew"].dtype == np.float64 and set(saas["auto_renew"]) == {0.0, 1.0}
    assert saas["monthly_spend"].isna().sum() == len(range(0, 1200, 9))
    for rule in (
        quality.schema_matches,
        quality.no_unexpected_nulls,
        quality.values_in_range,
        quality.unique_customer_ids,
        quality.label_balance,
    ):
        assert rule(saas, SAAS).passed, rule(saas, SAAS).summary


def test_derived_ids_are_stable_and_what_the_api_derives(saas: pd.DataFrame) -> None:
    raw = _saas_raw(1200)
    shuffled = raw.sample(frac=1.0, random_state=1)
    again = clean_customers(shuffled, "saas.csv", SAAS).frame
    by_content = dict(zip(again["row_id"], again.index, strict=True))
    assert set(by_content) <= set(saas["row_id"]) and len(again) == len(saas) == 1200
    first = saas.iloc[0]
    typed = [first[name] for name in SAAS.feature_names]
    assert first["row_id"] == derive_row_id(typed)
    # A request carries the same customer as JSON: ints, strings, a real boolean.
    as_json = [int(first["seats"]), first["monthly_spend"], first["plan"], first["region"],
               bool(first["auto_renew"])]  # fmt: skip
    assert derive_row_id(as_json) == first["row_id"]


def test_a_true_false_target_and_an_id_alias(tmp_path) -> None:
    raw = pd.DataFrame(
        {
            "Member": [" a1", "a2", "a3", "a2"],
            "visits": ["3", "0", "12", "1"],
            "Cancelled": ["true", "FALSE", "yes", "0"],
        }
    )
    result = clean_customers(raw, "gym.csv", GYM)
    assert list(result.frame["member_id"]) == ["a1", "a3", "a2"]  # duplicate: last kept
    assert list(result.frame["cancelled"]) == [1, 1, 0]
    assert result.duplicates_dropped == 1
    raw.loc[2, "Cancelled"] = "perhaps"
    with pytest.raises(ContractError, match=r"gym\.csv: column 'cancelled' line 4"):
        clean_customers(raw, "gym.csv", GYM)


def test_contract_problems_lists_every_problem_with_line_and_column() -> None:
    raw = _saas_raw(40)
    raw.loc[3, "Seats"] = "many"
    raw.loc[5, "Seats"] = "0"
    raw.loc[7, "PLAN"] = "gold"
    raw.loc[8, "Auto Renew"] = "sometimes"
    raw.loc[9, "monthly_spend"] = "-5"
    raw.loc[11, "Churn?"] = "2"
    problems = contract_problems(raw, "saas.csv", SAAS)
    found = {(p.line, p.column) for p in problems}
    assert found == {(5, "seats"), (7, "seats"), (9, "plan"), (10, "auto_renew"),
                     (11, "monthly_spend"), (13, "churned")}  # fmt: skip
    text = [str(p) for p in problems]
    assert "saas.csv: line 5, column 'seats': is not a whole number (got 'many')" in text
    assert "saas.csv: line 7, column 'seats': must be within [1, 10000] (got '0')" in text
    assert contract_problems(_saas_raw(40), "saas.csv", SAAS) == []


def test_problems_are_capped_per_column_and_missing_columns_come_first() -> None:
    raw = _saas_raw(30)
    raw["PLAN"] = "gold"
    problems = contract_problems(raw, "saas.csv", SAAS, limit_per_column=3)
    assert [p.line for p in problems] == [2, 3, 4, None]
    assert str(problems[-1]) == "saas.csv: column 'plan': and 27 more problem(s)"
    missing = contract_problems(raw.drop(columns=["region"]), "saas.csv", SAAS)
    assert [(p.line, p.column) for p in missing] == [(None, "region")]
    with pytest.raises(ContractError, match=r"missing column.*region"):
        clean_customers(raw.drop(columns=["region"]), "saas.csv", SAAS)


def test_boolean_features_accept_many_spellings_and_refuse_others() -> None:
    raw = _saas_raw(8)
    raw["Auto Renew"] = ["Yes", "no", "TRUE", "f", "1", "0.0", " y ", "N"]
    frame = clean_customers(raw, "saas.csv", SAAS).frame
    assert list(frame["auto_renew"]) == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    raw.loc[0, "Auto Renew"] = ""
    with pytest.raises(ContractError, match="'auto_renew' line 2: must not be blank"):
        clean_customers(raw, "saas.csv", SAAS)


@pytest.mark.parametrize("name", recipes.RECIPES)
def test_both_recipes_train_on_a_small_contract_and_score_unseen_categories(
    saas: pd.DataFrame, name: str
) -> None:
    split = stratified_split(saas, SAAS, 0.25, seed=0)
    model = recipes.train(split.train, name, seed=0, contract=SAAS)
    scores = scoring.churn_probability(model, split.holdout, SAAS)
    auc = evaluate_scores(scoring.labels(split.holdout, SAAS), scores).metrics["roc_auc"]
    assert auc > 0.7
    rows = scoring.frame_to_rows(split.holdout, SAAS)[:20]
    rows[0][SAAS.feature_names.index("region")] = "atlantis"  # never seen in training
    rows[1][SAAS.feature_names.index("auto_renew")] = True  # a JSON boolean
    rows[2][SAAS.feature_names.index("monthly_spend")] = None
    fast = scoring.scorer(model, rows, SAAS)
    plain = scoring.churn_probability(model, scoring.rows_to_frame(rows, SAAS), SAAS)
    np.testing.assert_allclose(fast(rows), plain, atol=1e-12)
    assert np.isfinite(plain).all()
    # The boosting recipe keeps its direct path (not the pipeline) under any contract.
    assert (fast.__name__ == "score") == (name == "hist_gradient_boosting")


def test_rare_open_levels_are_capped_for_the_trees(saas: pd.DataFrame) -> None:
    many = saas.copy()
    levels = [f"city-{i}" for i in range(len(many))]
    many["region"] = pd.Categorical(levels)
    model = recipes.train(many, "hist_gradient_boosting", seed=0, contract=SAAS)
    encoder = model.named_steps["preprocess"].named_transformers_["open_categorical"]
    assert len(encoder.categories_[0]) == len(many)
    codes = encoder.transform(many[["region"]])
    assert np.nanmax(codes) < recipes.MAX_CATEGORY_LEVELS
    rows = scoring.frame_to_rows(many, SAAS)[:30]
    fast = scoring.scorer(model, rows, SAAS)
    plain = scoring.churn_probability(model, scoring.rows_to_frame(rows, SAAS), SAAS)
    np.testing.assert_allclose(fast(rows), plain, atol=1e-12)
    assert fast.__name__ == "score"  # the direct path reproduces the grouped codes


def test_the_gate_judges_the_contracts_own_slices(saas: pd.DataFrame) -> None:
    specs = slice_specs(SAAS)
    assert [spec.text() for spec in specs] == ["plan", "seats:5,20"]
    y = saas["churned"].to_numpy()
    scores = np.clip(y * 0.6 + np.random.default_rng(0).uniform(0, 0.5, len(y)), 0, 1)
    report = judge_challenger(saas, scores, None, GateRules(0.6, 0.002, 0.05, specs), SAAS)
    assert report.promote
    assert {s.name for s in report.slices} >= {"plan = basic", "seats in [5, 20)"}
    with pytest.raises(ValueError, match="'tenure' is not a feature of contract 'saas-accounts'"):
        slice_specs(SAAS, ["tenure:0,6"])


# Read with "NA", "null" and "?" as missing; every kind nullable but `score` and the target.
SURVEY: Contract = parse_contract(
    {
        "dataset": "survey",
        "target": {"name": "left", "positive": ["yes"], "negative": ["no"]},
        "features": [
            {"name": "age", "kind": "integer", "nullable": True},
            {"name": "score", "kind": "numeric"},
            {"name": "member", "kind": "boolean", "nullable": True},
            {"name": "tier", "kind": "categorical", "categories": ["a", "b"], "nullable": True},
            {"name": "city", "kind": "categorical", "nullable": True},
        ],
        "missing_values": ["NA", "null", " ? "],
    },
    "survey.yaml",
)


def _survey_raw() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": ["30", "NA", " NA ", "41"],
            "score": ["1.5", "2", "3", "4"],
            "member": ["yes", "null", "no", "?"],
            "tier": ["a", "?", "b", "NA"],
            "city": ["oslo", "null", "NA", "rome"],
            "left": ["yes", "no", "no", "yes"],
        }
    )


def test_missing_value_markers_read_as_blank_in_every_kind() -> None:
    frame = clean_customers(_survey_raw(), "survey.csv", SURVEY).frame
    assert frame["age"].isna().tolist() == [False, True, True, False]
    assert frame["member"].isna().tolist() == [False, True, False, True]
    assert frame["tier"].isna().tolist() == [False, True, False, True]
    assert frame["city"].isna().tolist() == [False, True, True, False]
    assert list(frame["city"].cat.categories) == ["oslo", "rome"]  # "NA" is no category
    assert SURVEY.missing_values == ("NA", "null", "?")  # markers are stripped too


def test_missing_value_markers_are_case_sensitive_and_blank_where_blank_is_refused() -> None:
    raw = _survey_raw()
    raw.loc[1, "age"] = "na"
    raw.loc[2, "score"] = "NA"
    raw.loc[3, "left"] = "?"
    text = [str(p) for p in contract_problems(raw, "survey.csv", SURVEY)]
    assert text == [
        "survey.csv: line 3, column 'age': is not a whole number (got 'na')",
        "survey.csv: line 4, column 'score': must not be blank (got 'NA')",
        "survey.csv: line 5, column 'left': must not be blank (got '?')",
    ]
    without = SURVEY.model_copy(update={"missing_values": ()})
    assert without.fingerprint == SURVEY.fingerprint  # how a file is read, not what a model sees
    with pytest.raises(ContractError, match=r"column 'tier' line 3, 5: must be one of"):
        clean_customers(_survey_raw(), "survey.csv", without)


def test_parquet_and_other_sources_name_rows_not_lines(tmp_path) -> None:
    raw = _saas_raw(20)
    raw.loc[2, "Seats"] = "0"
    expected = re.escape("column 'seats' row 3: must be within [1, 10000]")
    with pytest.raises(ContractError, match=rf"^saas\.parquet: {expected}"):
        clean_customers(raw, "saas.parquet", SAAS)
    with pytest.raises(ContractError, match=rf"^prediction store: {expected}"):
        clean_customers(raw, "prediction store", SAAS)
    problems = contract_problems(raw, str(tmp_path / "saas.PQ"), SAAS)
    assert [(p.line, p.column) for p in problems] == [(3, "seats")]
    assert str(problems[0]).endswith("saas.PQ: row 3, column 'seats': must be within [1, 10000] "
                                     "(got '0')")  # fmt: skip
    csv = contract_problems(raw, "SAAS.CSV", SAAS)
    assert str(csv[0]).startswith("SAAS.CSV: line 4, column 'seats'")


@pytest.mark.parametrize(
    ("extra", "column", "headers"),
    [
        ("churned", "churned", "'churned', 'Churn?'"),  # a name and its alias
        ("SEATS", "seats", "'SEATS', 'Seats'"),  # two spellings of one name
    ],
)
def test_two_headers_for_one_column_are_a_problem_naming_both(
    extra: str, column: str, headers: str
) -> None:
    raw = _saas_raw(10)
    raw.insert(0, extra, raw["Churn?"] if column == "churned" else raw["Seats"])
    problems = contract_problems(raw, "saas.csv", SAAS)
    assert [(p.line, p.column) for p in problems] == [(None, column)]
    message = f"2 headers match this column ({headers}); keep one, rename or drop the rest"
    assert str(problems[0]) == f"saas.csv: column '{column}': {message}"
    with pytest.raises(ContractError, match=re.escape(message)):
        clean_customers(raw, "saas.csv", SAAS)
