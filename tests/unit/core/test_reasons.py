"""Reason codes: attributions that add up to the served model's margin exactly (missing values,
unseen and infrequent categories, calibration included), and readable top reasons."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from churnops.contract import Contract, parse_contract, telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.synthetic import generate_customers
from churnops.model import recipes
from churnops.model.calibration import with_calibration
from churnops.model.reasons import (
    Explanation,
    UnsupportedModel,
    build_explainer,
    top_reasons,
)
from churnops.model.recipes import HistGradientBoostingParams
from churnops.model.scoring import features, frame_to_rows, labels, rows_to_frame
from tests.unit.serving.contracts import GYM
from tests.unit.throwaway_recipe import PRIOR

pytestmark = pytest.mark.unit

TELCO = telco_contract()
# Numbers and a boolean only: the boosted trees then have no native categorical column.
METER: Contract = parse_contract(
    {
        "dataset": "meter",
        "target": {"name": "gone", "positive": [1], "negative": [0]},
        "features": [
            {"name": "usage", "kind": "numeric", "nullable": True},
            {"name": "autopay", "kind": "boolean"},
        ],
    },
    "meter test contract",
)
CALIBRATIONS = ("none", "sigmoid", "isotonic")
MODELS = [(name, how) for name in recipes.RECIPES for how in CALIBRATIONS]
# More clubs than a recipe encodes (250 levels): rare ones share the "infrequent" level.
CLUBS = [f"club-{i:03d}" for i in range(300)]
LOYAL = {
    "gender": "Female",
    "SeniorCitizen": 0,
    "Partner": "Yes",
    "Dependents": "Yes",
    "tenure": 72,
    "PhoneService": "Yes",
    "MultipleLines": "No",
    "InternetService": "DSL",
    "OnlineSecurity": "Yes",
    "OnlineBackup": "Yes",
    "DeviceProtection": "Yes",
    "TechSupport": "Yes",
    "StreamingTV": "No",
    "StreamingMovies": "No",
    "Contract": "Two year",
    "PaperlessBilling": "No",
    "PaymentMethod": "Bank transfer (automatic)",
    "MonthlyCharges": 60.0,
    "TotalCharges": 4320.0,
}


def _gym_raw(rows: int, seed: int) -> pd.DataFrame:
    """Members with a churn signal in every feature; a third of the clubs are rare."""
    rng = np.random.default_rng(seed)
    age = rng.integers(16, 80, rows)
    has_pass = rng.random(rows) < 0.5
    weights = np.where(np.arange(len(CLUBS)) < 200, 1.0, 0.05)
    club = rng.choice(CLUBS, rows, p=weights / weights.sum())
    plan = rng.choice(["basic", "plus"], rows)
    visits = rng.gamma(2.0, 4.0, rows).round(1)
    absent = rng.random(rows) < 0.1
    logit = (
        1.0
        - 0.15 * np.where(absent, 0.0, visits)
        - 1.2 * has_pass
        + 0.9 * np.isin(club, CLUBS[:40])
        - 0.02 * (age - 40)
        + 0.5 * (plan == "basic")
    )
    left = rng.random(rows) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "age": age.astype(str),
            "has pass": np.where(has_pass, "yes", "no"),
            "club": club,
            "plan": plan,
            "visits": np.where(absent, "", visits.astype(str)),
            "left": left.astype(int).astype(str),
        }
    )


def _meter_raw(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    usage = rng.gamma(2.0, 10.0, rows).round(2)
    autopay = rng.random(rows) < 0.6
    gone = rng.random(rows) < 1 / (1 + np.exp(-(1.0 - 0.08 * usage - 1.0 * autopay)))
    text = usage.astype(str)
    text[::8] = ""
    return pd.DataFrame(
        {"usage": text, "autopay": np.where(autopay, "true", "false"), "gone": gone.astype(int)}
    )


@cache
def _customers(contract_name: str, seed: int, rows: int = 3000) -> pd.DataFrame:
    contract = CONTRACTS[contract_name]
    if contract_name == "telco":
        raw = generate_customers(rows, seed=seed)
    elif contract_name == "gym":
        raw = _gym_raw(rows, seed)
    else:
        raw = _meter_raw(rows, seed)
    return clean_customers(raw, contract_name, contract).frame


CONTRACTS = {"telco": TELCO, "gym": GYM, "meter": METER}


@cache
def _model(contract_name: str, recipe: str, calibration: str) -> Pipeline:
    """Small fits (3000 rows, at most 50 boosting rounds), each once per session."""
    contract = CONTRACTS[contract_name]
    train = _customers(contract_name, seed=11)
    params = HistGradientBoostingParams(max_iter=50) if recipe == "hist_gradient_boosting" else None
    pipeline = recipes.build_pipeline(recipe, params, seed=0, contract=contract)
    pipeline = with_calibration(pipeline, calibration, folds=3)
    return pipeline.fit(features(train, contract), labels(train, contract))


def _explainer(contract_name: str, recipe: str, calibration: str = "none"):
    background = _customers(contract_name, seed=11).sample(800, random_state=0)
    model = _model(contract_name, recipe, calibration)
    return build_explainer(model, CONTRACTS[contract_name], background)


def _telco_probe() -> pd.DataFrame:
    """Held-out customers through the serving path, with every awkward value: blank nullable
    and non-nullable numbers, a blank and an unknown category."""
    rows = frame_to_rows(_customers("telco", seed=12, rows=400), TELCO)
    column = {name: i for i, name in enumerate(TELCO.feature_names)}
    for i, row in enumerate(rows):
        if i % 5 == 0:
            row[column["TotalCharges"]] = None
        if i % 7 == 0:
            row[column["tenure"]] = None
        if i % 11 == 0:
            row[column["MonthlyCharges"]] = None
        if i % 13 == 0:
            row[column["Contract"]] = "Three year"
        if i % 17 == 0:
            row[column["PaymentMethod"]] = None
    return rows_to_frame(rows, TELCO)


def _gym_probe() -> pd.DataFrame:
    """Members with clubs never seen at fit, rare (infrequent) clubs, and blanks everywhere."""
    rows = frame_to_rows(_customers("gym", seed=12, rows=400), GYM)
    for i, row in enumerate(rows):
        if i % 4 == 0:
            row[2] = f"a new club {i}"
        if i % 9 == 0:
            row[2] = CLUBS[-1 - i % 50]
        if i % 6 == 0:
            row[4] = None
        if i % 10 == 0:
            row[1] = None
        if i % 15 == 0:
            row[2] = None
        if i % 14 == 0:
            row[3] = None
        if i % 19 == 0:
            row[0] = None
    return rows_to_frame(rows, GYM)


def _meter_probe() -> pd.DataFrame:
    rows = frame_to_rows(_customers("meter", seed=12, rows=300), METER)
    for i, row in enumerate(rows):
        if i % 3 == 0:
            row[0] = None
        if i % 5 == 0:
            row[1] = None
    return rows_to_frame(rows, METER)


PROBES = {"telco": _telco_probe, "gym": _gym_probe, "meter": _meter_probe}


@pytest.mark.parametrize(("recipe", "calibration"), MODELS)
@pytest.mark.parametrize("contract_name", list(CONTRACTS))
def test_base_plus_contributions_is_the_models_margin(
    contract_name: str, recipe: str, calibration: str
) -> None:
    contract = CONTRACTS[contract_name]
    explainer = _explainer(contract_name, recipe, calibration)
    probe = PROBES[contract_name]()
    explanation = explainer.explain(probe)
    margin = explainer.margin(probe)

    assert explanation.contributions.shape == (len(probe), len(contract.feature_names))
    assert explanation.feature_names == contract.feature_names
    np.testing.assert_allclose(explanation.margin, margin, rtol=0, atol=1e-9)
    # The margin is the served model's: a monotone map of its churn probability.
    probability = _model(contract_name, recipe, calibration).predict_proba(probe)[:, 1]
    ranked = np.argsort(margin, kind="stable")
    assert np.all(np.diff(probability[ranked]) >= -1e-12)
    assert np.ptp(margin) > 0.5  # the probe rows really differ


@pytest.mark.parametrize("contract_name", ["telco", "gym"])
def test_the_boosted_explainer_reproduces_the_uncalibrated_decision_function(
    contract_name: str,
) -> None:
    model = _model(contract_name, "hist_gradient_boosting", "none")
    probe = PROBES[contract_name]()
    explanation = _explainer(contract_name, "hist_gradient_boosting").explain(probe)
    decision = model.decision_function(features(probe, CONTRACTS[contract_name]))
    np.testing.assert_allclose(explanation.margin, decision, rtol=0, atol=1e-9)


def test_each_recipe_gets_its_exact_method() -> None:
    assert _explainer("telco", "logistic_regression", "sigmoid").method == "linear"
    assert _explainer("telco", "hist_gradient_boosting", "isotonic").method == "tree_path"


def test_linear_contributions_average_zero_over_the_background() -> None:
    """The linear base is the margin of the background's mean row, so the background's
    contributions cancel out feature by feature."""
    contract = CONTRACTS["gym"]
    background = _customers("gym", seed=11).sample(800, random_state=0)
    explainer = build_explainer(_model("gym", "logistic_regression", "none"), contract, background)
    explanation = explainer.explain(background)
    np.testing.assert_allclose(explanation.contributions.mean(axis=0), 0.0, atol=1e-9)
    assert np.abs(explanation.contributions).max() > 0.1


@pytest.mark.parametrize("contract_name", ["telco", "gym"])
def test_boosted_contributions_average_about_zero_over_the_training_customers(
    contract_name: str,
) -> None:
    """The tree base is the expected margin over the rows the trees were fitted on (all but the
    early-stopping tenth), so each feature's contributions about cancel over the training set.
    sklearn's stored internal node values (unshrunk, the root's 0) would be off by far more."""
    train = _customers(contract_name, seed=11)
    explanation = _explainer(contract_name, "hist_gradient_boosting").explain(train)
    assert np.abs(explanation.contributions.mean(axis=0)).max() < 0.02
    assert explanation.base[0] == pytest.approx(explanation.margin.mean(), abs=0.02)
    assert np.abs(explanation.contributions).mean() > 0.1


def test_changing_one_feature_moves_only_its_linear_contribution() -> None:
    explainer = _explainer("telco", "logistic_regression")
    position = TELCO.feature_names.index("tenure")
    frame = rows_to_frame(
        [list(LOYAL.values()), [0 if name == "tenure" else v for name, v in LOYAL.items()]],
        TELCO,
    )
    contributions = explainer.explain(frame).contributions
    moved = np.flatnonzero(~np.isclose(contributions[0], contributions[1], rtol=0, atol=1e-12))
    assert moved.tolist() == [position]
    assert contributions[1, position] > contributions[0, position]


@pytest.mark.parametrize("recipe", list(recipes.RECIPES))
def test_a_month_to_month_contract_is_a_loyal_customers_first_reason(recipe: str) -> None:
    explainer = _explainer("telco", recipe)
    risky = {**LOYAL, "Contract": "Month-to-month"}
    frame = rows_to_frame([list(LOYAL.values()), list(risky.values())], TELCO)
    explanation = explainer.explain(frame)
    loyal, moved = top_reasons(explanation, frame)

    assert "Contract" not in [reason.feature for reason in loyal]
    assert moved[0].feature == "Contract"
    assert moved[0].text == "Contract is Month-to-month"
    assert moved[0].value == "Month-to-month"
    assert explanation.margin[1] > explanation.margin[0] + 1.0


def _made(contributions: list[list[float]], rows: list[list[object]]) -> tuple:
    explanation = Explanation(
        base=np.zeros(len(rows)),
        contributions=np.array(contributions, dtype=np.float64),
        feature_names=GYM.feature_names,
        kinds=tuple(feature.kind for feature in GYM.features),
    )
    return explanation, rows_to_frame(rows, GYM)


def test_top_reasons_are_the_positive_ones_largest_first_at_most_k() -> None:
    explanation, frame = _made(
        [
            [0.1, -0.4, 0.9, 0.3, 0.0],
            [-0.1, -0.2, -0.3, -0.4, -0.5],
            [0.2, 0.5, -1.0, 0.0, 0.0],
        ],
        [[41, True, "Leeds", "basic", 3.5]] * 3,
    )
    reasons = top_reasons(explanation, frame, k=2)
    assert [[r.feature for r in row] for row in reasons] == [
        ["club", "plan"],
        [],
        ["has pass", "age"],
    ]
    assert [r.contribution for r in reasons[0]] == [0.9, 0.3]
    everything = top_reasons(explanation, frame, k=5)
    assert [len(row) for row in everything] == [3, 0, 2]  # zero is no reason
    assert all(r.contribution > 0 for row in everything for r in row)
    with pytest.raises(ValueError, match="k must be at least 1"):
        top_reasons(explanation, frame, k=0)
    with pytest.raises(ValueError, match="2 rows given for an explanation of 3"):
        top_reasons(explanation, frame.head(2))


def test_reason_texts_read_as_values_of_their_kind() -> None:
    explanation, frame = _made(
        [[0.5, 0.4, 0.3, 0.2, 0.1], [0.5, 0.4, 0.3, 0.2, 0.1]],
        [[41, True, "Leeds", "basic", None], [None, False, None, "plus", 2.5]],
    )
    first, second = top_reasons(explanation, frame, k=5)
    assert [r.text for r in first] == [
        "age is 41",
        "has pass is true",
        "club is Leeds",
        "plan is basic",
        "visits is missing",
    ]
    assert [r.value for r in first] == [41, True, "Leeds", "basic", None]
    assert isinstance(first[0].value, int) and isinstance(first[1].value, bool)
    assert [r.text for r in second] == [
        "age is missing",
        "has pass is false",
        "club is missing",
        "plan is plus",
        "visits is 2.5",
    ]
    assert second[4].value == 2.5


def test_reasons_from_a_model_say_booleans_and_unseen_clubs_in_words() -> None:
    explainer = _explainer("gym", "logistic_regression")
    frame = rows_to_frame([[16, False, "a club never seen", "basic", 0.0]], GYM)
    (reasons,) = top_reasons(explainer.explain(frame), frame, k=5)
    texts = {r.feature: r.text for r in reasons}
    assert texts["has pass"] == "has pass is false"
    assert texts["age"] == "age is 16"
    assert texts["visits"] == "visits is 0"


def _fitted(pipeline: Pipeline, contract: Contract = TELCO) -> Pipeline:
    train = _customers("telco", seed=11)
    return pipeline.fit(features(train, contract), labels(train, contract))


def test_a_model_it_cannot_explain_exactly_is_refused_by_name() -> None:
    background = _customers("telco", seed=11).head(100)
    preprocess = ColumnTransformer(
        [("categorical", OrdinalEncoder(), list(TELCO.categorical))], remainder="passthrough"
    )
    forest = _fitted(
        Pipeline([("preprocess", preprocess), ("model", RandomForestClassifier(n_estimators=3))])
    )
    with pytest.raises(UnsupportedModel, match="ending in RandomForestClassifier"):
        build_explainer(forest, TELCO, background)

    prior = _fitted(PRIOR.pipeline(None, 0, TELCO))
    with pytest.raises(UnsupportedModel, match="pipeline DummyClassifier"):
        build_explainer(prior, TELCO, background)

    with pytest.raises(UnsupportedModel, match="got LogisticRegression"):
        build_explainer(LogisticRegression(), TELCO, background)  # type: ignore[arg-type]

    unfitted = recipes.build_pipeline("logistic_regression", seed=0, contract=TELCO)
    with pytest.raises(UnsupportedModel, match="not fitted"):
        build_explainer(unfitted, TELCO, background)

    averaged = recipes.build_pipeline("logistic_regression", seed=0, contract=TELCO)
    averaged.steps[-1] = ("model", CalibratedClassifierCV(LogisticRegression(), cv=3))
    with pytest.raises(UnsupportedModel, match=r"averaging 3 models.*ensemble=False"):
        build_explainer(_fitted(averaged), TELCO, background)
    assert issubclass(UnsupportedModel, ValueError)


def test_a_pipeline_for_another_contract_is_refused() -> None:
    model = _model("gym", "logistic_regression", "none")
    with pytest.raises(UnsupportedModel, match="columns the contract lacks"):
        build_explainer(model, TELCO, _customers("telco", seed=11).head(50))
