"""The boosted trees' lean copy (tree_input.py): same probabilities as the pipeline, without the
trees' own per-call re-encoding, and a fallback when the copy disagrees."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression

from churnops.contract import telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.synthetic import generate_customers
from churnops.model import recipes, scoring, tree_input
from churnops.model.calibration import with_calibration
from churnops.model.scoring import UNSEEN_CATEGORY, check_rows

pytestmark = pytest.mark.unit
TELCO = telco_contract()


@pytest.fixture(scope="module")
def customers():
    return clean_customers(generate_customers(3000, seed=3), "s", TELCO).frame


@pytest.fixture(scope="module")
def boosting(customers):
    return recipes.train(customers, "hist_gradient_boosting", seed=0, contract=TELCO)


def _odd_rows(customers) -> list[list[object]]:
    """Holdout-like rows with blanks and a category no training row had."""
    rows = scoring.frame_to_rows(customers.head(300), TELCO)
    categorical = TELCO.feature_names.index(TELCO.categorical[0])
    for i in range(0, len(rows), 4):
        rows[i][categorical] = UNSEEN_CATEGORY
    for i in range(1, len(rows), 5):
        rows[i][categorical] = None
    return rows


def _trees_encoder_calls(model, monkeypatch) -> list[int]:
    """Calls of the trees' own encoder (the work the lean copy skips) from now on."""
    calls: list[int] = []
    final = model.named_steps["model"]
    pairs = getattr(final, "calibrated_classifiers_", None)
    trees = pairs[0].estimator if pairs else final
    original = trees._preprocessor.transform
    monkeypatch.setattr(
        trees._preprocessor, "transform", lambda x: calls.append(len(x)) or original(x)
    )
    return calls


def test_the_lean_trees_score_like_the_pipeline_and_skip_their_own_encoder(
    customers, boosting, monkeypatch
) -> None:
    rows = _odd_rows(customers)
    expected = scoring.churn_probability(boosting, scoring.rows_to_frame(rows, TELCO), TELCO)
    score = scoring.scorer(boosting, check_rows(TELCO), TELCO)
    calls = _trees_encoder_calls(boosting, monkeypatch)
    np.testing.assert_allclose(score(rows), expected, rtol=0, atol=1e-12)
    assert calls == []


def test_a_calibrated_boosting_model_gets_the_lean_trees_too(customers, monkeypatch) -> None:
    pipeline = with_calibration(
        recipes.build_pipeline("hist_gradient_boosting", seed=0, contract=TELCO), "sigmoid", 3
    )
    model = pipeline.fit(scoring.features(customers, TELCO), scoring.labels(customers, TELCO))
    assert isinstance(model.named_steps["model"], CalibratedClassifierCV)
    rows, head = _odd_rows(customers), customers.head(200)
    expected = scoring.churn_probability(model, scoring.rows_to_frame(rows, TELCO), TELCO)
    expected_frame = scoring.churn_probability(model, head, TELCO)
    score = scoring.scorer(model, check_rows(TELCO), TELCO)
    frame_score = scoring.frame_scorer(model, head, TELCO)
    calls = _trees_encoder_calls(model, monkeypatch)
    np.testing.assert_allclose(score(rows), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(frame_score(head), expected_frame, rtol=0, atol=1e-12)
    assert calls == []


def test_lean_copies_that_disagree_fall_back_to_the_trees_own_encoder(
    customers, boosting, monkeypatch
) -> None:
    monkeypatch.setattr(tree_input._CodeLookup, "transform", lambda self, x: np.zeros(np.shape(x)))
    rows = _odd_rows(customers)
    score = scoring.scorer(boosting, check_rows(TELCO), TELCO)
    expected = scoring.churn_probability(boosting, scoring.rows_to_frame(rows, TELCO), TELCO)
    np.testing.assert_allclose(score(rows), expected, rtol=0, atol=1e-12)
    assert score.__name__ == "score"  # still the direct path, with the trees' own encoder


def test_only_boosted_trees_get_a_lean_copy() -> None:
    assert tree_input.lean_estimator(LogisticRegression()) is None
    assert tree_input.lean_estimator(CalibratedClassifierCV(LogisticRegression())) is None
