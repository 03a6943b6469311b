"""Batch scoring: every customer ranked, the top N, reasons, errors that name the line and leave
nothing behind; and a registered version made ready for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnops.contract import ContractError, telco_contract
from churnops.data.cleaning import clean_customers, customers_to_score
from churnops.data.synthetic import generate_customers
from churnops.model import recipes
from churnops.model.batch import (
    ScoringModel,
    output_columns,
    ranks,
    read_metadata,
    score_chunks,
    score_file,
)
from churnops.model.reasons import build_explainer
from registry.interface import (
    DECISION_BASIS_TAG,
    DECISION_THRESHOLD_TAG,
    RegistryError,
    decision_tags,
    served_decision,
)
from registry.memory import InMemoryModelRegistry
from registry.scoring import scoring_model
from tests.unit.serving.contracts import GYM

pytestmark = pytest.mark.unit

TELCO = telco_contract()


@pytest.fixture(scope="module")
def trained():
    frame = clean_customers(generate_customers(3_000, seed=1), "synthetic", TELCO).frame
    pipeline = recipes.train(frame, "hist_gradient_boosting", seed=1, contract=TELCO)
    return pipeline, frame


@pytest.fixture(scope="module")
def model(trained) -> ScoringModel:
    pipeline, frame = trained
    explainer = build_explainer(pipeline, TELCO, frame.head(500))
    return ScoringModel.build(pipeline, "7", 0.3, TELCO, explainer)


def _base(rows: int, seed: int = 5) -> pd.DataFrame:
    return generate_customers(rows, seed=seed).drop(columns=["Churn"])


def _chunks(frame: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    return [frame.iloc[i : i + size] for i in range(0, len(frame), size)]


def test_ranks_put_the_highest_probability_first_and_keep_input_order_on_ties() -> None:
    assert ranks(np.array([0.2, 0.9, 0.2, 0.5])).tolist() == [3, 1, 4, 2]


def test_every_customer_is_written_in_input_order_with_rank_and_decision(
    model: ScoringModel, trained, tmp_path: Path
) -> None:
    base = _base(2_500)
    out = tmp_path / "scores.parquet"
    summary = score_chunks(
        _chunks(base, 1_000), "base", str(out), model, TELCO, input_fingerprint="abc"
    )
    written = pd.read_parquet(out)
    assert list(written.columns) == output_columns(TELCO, explain=False)
    assert list(written["customerID"]) == list(base["customerID"])
    pipeline, _ = trained
    expected = pipeline.predict_proba(customers_to_score(base, "b", TELCO).iloc[:, 1:])[:, 1]
    np.testing.assert_array_equal(written["churn_probability"].to_numpy(), expected)
    assert written["rank"].tolist() == ranks(expected).tolist()
    assert (written["churn"] == np.where(expected >= 0.3, "Yes", "No")).all()
    assert summary.rows == 2_500 and summary.predicted_churners == int((expected >= 0.3).sum())
    assert summary.histogram.sum() == 2_500
    assert summary.top["rank"].tolist() == list(range(1, 21))
    assert read_metadata(str(out))["input_fingerprint"] == "abc"


def test_the_top_n_equals_the_head_of_the_full_ranking_with_reasons(
    model: ScoringModel, tmp_path: Path
) -> None:
    base = _base(3_000, seed=9)
    full = tmp_path / "all.parquet"
    top = tmp_path / "top.parquet"
    score_chunks(_chunks(base, 700), "b", str(full), model, TELCO, input_fingerprint="f")
    score_chunks(
        _chunks(base, 700), "b", str(top), model, TELCO, input_fingerprint="f", top=25, explain=True
    )
    everyone = pd.read_parquet(full).sort_values("rank").head(25)
    best = pd.read_parquet(top)
    assert list(best["customerID"]) == list(everyone["customerID"])
    assert list(best["rank"]) == list(range(1, 26))
    assert list(best.columns) == output_columns(TELCO, explain=True)
    assert best["reason_1"].notna().all()
    # The file's margin is the model's own, for the same customers.
    rows = customers_to_score(base, "b", TELCO).set_index("customerID").loc[best["customerID"]]
    margin = model.explainer.margin(rows.reset_index())
    np.testing.assert_allclose(best["log_odds"].to_numpy(), margin, atol=1e-9)


def test_a_bad_row_in_a_later_chunk_names_its_line_and_leaves_nothing(
    model: ScoringModel, tmp_path: Path
) -> None:
    base = _base(1_200).astype(object)
    base.loc[1_050, "tenure"] = "twelve"
    csv = tmp_path / "customers.csv"
    base.to_csv(csv, index=False)
    out = tmp_path / "out" / "scores.parquet"
    out.parent.mkdir()
    out.write_bytes(b"last week's list")
    with pytest.raises(ContractError) as error:
        score_file(csv, str(out), model, TELCO, chunk_rows=500)
    message = str(error.value)
    assert str(csv) in message and "'tenure'" in message and "line 1052" in message
    assert out.read_bytes() == b"last week's list", "the previous file is untouched"
    assert [p.name for p in out.parent.iterdir()] == ["scores.parquet"]


def test_a_target_column_is_ignored_and_a_missing_feature_is_named(
    model: ScoringModel, tmp_path: Path
) -> None:
    labelled = generate_customers(300, seed=2)
    out = tmp_path / "scores.parquet"
    summary = score_chunks([labelled], "x", str(out), model, TELCO, input_fingerprint="f")
    assert summary.rows == 300
    with pytest.raises(ContractError, match=r"missing column.*tenure"):
        score_chunks(
            [labelled.drop(columns=["tenure"])], "x", str(out), model, TELCO, input_fingerprint="f"
        )


def test_reasons_need_an_explainer(trained, tmp_path: Path) -> None:
    pipeline, _ = trained
    bare = ScoringModel.build(pipeline, "1", 0.5, TELCO)
    out = tmp_path / "s.parquet"
    with pytest.raises(ValueError, match="no explainer"):
        score_chunks([_base(10)], "x", str(out), bare, TELCO, input_fingerprint="f", explain=True)
    assert not out.exists()


def test_a_contract_without_ids_gets_the_ids_cleaning_derives(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "age": rng.integers(16, 80, 400),
            "has pass": rng.choice(["yes", "no"], 400),
            "club": rng.choice(["Leeds", "York"], 400),
            "plan": rng.choice(["basic", "plus"], 400),
            "visits": rng.uniform(0, 30, 400),
            "left": rng.choice([1, 0], 400),
        }
    )
    cleaned = clean_customers(frame, "gym", GYM).frame
    pipeline = recipes.train(cleaned, "logistic_regression", seed=0, contract=GYM)
    model = ScoringModel.build(pipeline, "1", 0.5, GYM)
    out = tmp_path / "gym.parquet"
    score_chunks([frame], "gym", str(out), model, GYM, input_fingerprint="f")
    written = pd.read_parquet(out)
    assert list(written[GYM.id_name]) == list(cleaned[GYM.id_name])


def test_served_decision_reads_the_tags_and_falls_back_to_half() -> None:
    assert served_decision(decision_tags(0.2345, "profit")) == (0.2345, "profit")
    threshold, basis = served_decision({})
    assert threshold == 0.5 and "records no decision threshold" in basis
    assert served_decision({DECISION_THRESHOLD_TAG: "1.5", DECISION_BASIS_TAG: "x"})[0] == 0.5
    assert served_decision({DECISION_THRESHOLD_TAG: "nan?"})[0] == 0.5


def test_scoring_model_loads_the_champion_with_its_threshold(trained) -> None:
    pipeline, frame = trained
    registry = InMemoryModelRegistry("churn", "training")
    with pytest.raises(RegistryError, match="no @champion yet"):
        scoring_model(registry, TELCO)
    run = registry.log_candidate("c", pipeline, {}, {}, contract=TELCO)
    registry.log_reference(run.run_id, frame.loc[:, list(TELCO.feature_names)])
    version = registry.register(run, decision_tags(0.27, "profit"))
    registry.promote(version, "test")
    model = scoring_model(registry, TELCO, explain=True)
    assert (model.version, model.threshold) == (version, 0.27)
    assert model.explainer is not None and model.explainer.method == "tree_path"
    with pytest.raises(RegistryError, match="not on"):
        scoring_model(registry, GYM)
