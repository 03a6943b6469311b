"""Drift and live quality from bin counts against the exact statistics from rows, on known
distributions; and the store's SQL counts (SQLite here, PostgreSQL in the integration tests)
against the same counts made in Python."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import brier_score_loss, roc_auc_score

from churnops.contract import telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.synthetic import DriftSpec, generate_customers
from churnops.monitoring import prediction_store
from churnops.monitoring.binned import (
    FINE_BINS,
    FieldBins,
    binned_drift,
    binned_reference,
    binned_report,
    count_frame,
    fine_edges,
    numeric_bins,
    numeric_counts,
    quality_from_bins,
)
from churnops.monitoring.drift import (
    SCORE_COLUMN,
    DriftThresholds,
    build_report,
    categorical_drift,
    live_quality,
    numeric_drift,
)
from churnops.monitoring.window_counts import count_window, quality_bins
from churnops.settings import Settings

pytestmark = pytest.mark.unit

T = DriftThresholds.from_settings(Settings())
TELCO = telco_contract()
RNG = np.random.default_rng(7)
KNOWN = {
    "same normal": (RNG.normal(0, 1, 8000), RNG.normal(0, 1, 6000)),
    "small shift": (RNG.normal(0, 1, 8000), RNG.normal(0.1, 1, 6000)),
    "unit shift": (RNG.normal(0, 1, 8000), RNG.normal(1.0, 1, 6000)),
    "wider": (RNG.normal(0, 1, 8000), RNG.normal(0, 2, 6000)),
    "exponential vs lognormal": (RNG.exponential(1, 8000), RNG.lognormal(0, 0.5, 6000)),
    "integers": (RNG.integers(0, 72, 8000).astype(float), RNG.integers(0, 60, 6000) * 1.0),
}


def _binned_numeric(reference: np.ndarray, current: np.ndarray):
    bins = numeric_bins("x", reference)
    ref, cur = numeric_counts(reference, bins.edges), numeric_counts(current, bins.edges)
    return bins, ref, cur, binned_drift(bins, ref, cur, T)


@pytest.mark.parametrize("case", sorted(KNOWN))
def test_binned_ks_is_a_lower_bound_within_one_bins_share_of_the_exact(case: str) -> None:
    reference, current = KNOWN[case]
    _, ref, cur, binned = _binned_numeric(reference, current)
    exact = numeric_drift("x", reference, current, T)
    largest_share = max(max(ref.values()) / len(reference), max(cur.values()) / len(current))
    assert binned.statistic <= exact.statistic + 1e-12
    assert exact.statistic - binned.statistic <= largest_share
    effective = round(len(reference) * len(current) / (len(reference) + len(current)))
    assert binned.p_value >= stats.kstwo.sf(exact.statistic, effective)  # more conservative
    assert binned.psi == pytest.approx(exact.psi, abs=1e-9)
    assert binned.drifted == exact.drifted


def test_binned_ks_p_value_is_the_asymptotic_kolmogorov_one_of_its_statistic() -> None:
    reference, current = KNOWN["small shift"]
    _, _, _, binned = _binned_numeric(reference, current)
    n, m = len(reference), len(current)
    expected = stats.kstwo.sf(binned.statistic, round(n * m / (n + m)))
    assert binned.p_value == pytest.approx(expected)
    assert binned.p_value < 0.01  # a 0.1 sd shift is detectable at these sizes


def test_fine_edges_hold_the_deciles_so_psi_is_exact() -> None:
    reference = KNOWN["wider"][0]
    edges = np.asarray(fine_edges(reference))
    assert len(edges) >= FINE_BINS - 1
    deciles = np.quantile(reference, np.arange(1, 10) / 10)
    assert np.isin(deciles, edges).all()


def test_category_counts_give_the_exact_chi_square_and_psi() -> None:
    levels = ("a", "b", "c")
    reference = pd.Series(np.repeat(["a", "b", "c", "zz"], [500, 300, 190, 10]))
    current = pd.Series(np.repeat(["a", "b", "c", "yy"], [150, 300, 500, 50]))
    bins = FieldBins("c", "levels", levels=levels)
    counts = count_frame((bins,), pd.DataFrame({"c": reference}))["c"]
    window = count_frame((bins,), pd.DataFrame({"c": current}))["c"]
    binned = binned_drift(bins, counts, window, T)
    exact = categorical_drift("c", reference, current, levels, T)
    assert binned.statistic == pytest.approx(exact.statistic)
    assert binned.p_value == pytest.approx(exact.p_value)
    assert binned.psi == pytest.approx(exact.psi)
    assert binned.drifted and exact.drifted


def _customers(n: int, seed: int, drift: DriftSpec | None = None) -> pd.DataFrame:
    frame = clean_customers(generate_customers(n, seed=seed, drift=drift), "s", TELCO).frame
    frame[SCORE_COLUMN] = np.random.default_rng(seed).beta(2, 5, n)
    return frame


@pytest.mark.parametrize("drift", [None, DriftSpec(monthly_charges_shift=25)])
def test_the_binned_report_decides_like_the_exact_one(drift: DriftSpec | None) -> None:
    reference, window = _customers(5000, 1), _customers(3000, 2, drift)
    bins = binned_reference(reference, TELCO)
    binned = binned_report(bins, count_frame(bins.fields, window), T)
    exact = build_report(reference, window.drop(columns=[TELCO.target.name]), T, TELCO)
    assert binned.rows == exact.rows == 3000
    assert binned.drifted_features == exact.drifted_features
    for b, e in zip([*binned.features, binned.score], [*exact.features, exact.score], strict=True):
        assert (b.feature, b.test) == (e.feature, e.test)
        assert b.psi == pytest.approx(e.psi, abs=1e-6)
        assert b.statistic <= e.statistic + 1e-9
    assert ("MonthlyCharges" in binned.drifted_features) == (drift is not None)


def test_live_quality_from_score_bins_matches_the_exact_auc_and_brier() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 4000)
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.2), 0, 1)
    window = pd.DataFrame(
        {
            "model_version": np.where(np.arange(4000) < 3000, "2", "3"),
            SCORE_COLUMN: scores,
            "Churn": np.where(labels == 1, "Yes", "No"),
        }
    )
    window["bin"] = np.floor(scores * 1000).astype(int)
    window["p2"] = scores**2
    bins = (
        window.groupby(["model_version", "Churn", "bin"])
        .agg(rows=("bin", "size"), sum_p=(SCORE_COLUMN, "sum"), sum_p2=("p2", "sum"))
        .reset_index()
        .rename(columns={"Churn": "label"})
    )
    binned = quality_from_bins(bins, 200, TELCO)
    exact = live_quality(window, 200, TELCO)
    assert binned.keys() == exact.keys() == {"2", "3"}
    for version in ("2", "3"):
        assert binned[version]["labels"] == exact[version]["labels"]
        assert binned[version]["brier"] == pytest.approx(exact[version]["brier"], abs=1e-12)
        assert binned[version]["roc_auc"] == pytest.approx(exact[version]["roc_auc"], abs=2e-3)
    rows = window[window["model_version"] == "2"]
    assert binned["2"]["brier"] == pytest.approx(brier_score_loss(labels[:3000], scores[:3000]))
    assert roc_auc_score(labels[:3000], rows[SCORE_COLUMN]) == pytest.approx(exact["2"]["roc_auc"])


def _logged(customers: pd.DataFrame, start: int) -> list[dict[str, object]]:
    records = []
    for i, row in enumerate(customers.to_dict("records")):
        record = {f.name: row[f.name] for f in TELCO.features}
        for feature in TELCO.features:
            value = record[feature.name]
            if feature.kind == "boolean" and value == value:
                record[feature.name] = bool(value)
            if isinstance(value, float) and value != value:
                record[feature.name] = None
        records.append(
            {
                **record,
                "request_id": f"r{start + i}",
                "ts": float(start + i),
                "model_version": "1",
                "customerID": f"c{start + i}",
                SCORE_COLUMN: row[SCORE_COLUMN],
                "churn": "Yes" if row[SCORE_COLUMN] >= 0.5 else "No",
            }
        )
    return records


def test_sqlite_counts_a_window_into_the_same_bins_as_python(tmp_path) -> None:
    reference = binned_reference(_customers(3000, 1), TELCO)
    window = _customers(1200, 5, DriftSpec(monthly_charges_shift=10))
    window.loc[3, "TotalCharges"] = np.nan
    engine = prediction_store.connect(f"sqlite:///{tmp_path / 'p.db'}", TELCO)
    prediction_store.write_predictions(engine, TELCO, _logged(window, 0))
    counted = count_window(engine, TELCO, reference.fields, 99.0, 1099.0)
    expected = count_frame(reference.fields, window.iloc[100:1100])
    assert counted == expected
    assert sum(counted[SCORE_COLUMN].values()) == 1000


def test_sqlite_quality_bins_join_labels_by_request_and_by_customer(tmp_path) -> None:
    window = _customers(400, 5)
    engine = prediction_store.connect(f"sqlite:///{tmp_path / 'p.db'}", TELCO)
    prediction_store.write_predictions(engine, TELCO, _logged(window, 0))
    labels = [{"request_id": f"r{i}", "Churn": "Yes" if i % 3 else "No"} for i in range(200)]
    labels += [{"customerID": f"c{i}", "Churn": "No"} for i in range(200, 300)]
    labels.append({"request_id": "r0", "Churn": "Yes"})  # a later label replaces the first
    prediction_store.write_feedback(engine, TELCO, labels)
    bins = quality_bins(engine, TELCO, None, None)
    read = prediction_store.read_predictions(engine, contract=TELCO)
    exact = live_quality(read, 50, TELCO)
    binned = quality_from_bins(bins, 50, TELCO)
    assert binned["1"]["labels"] == exact["1"]["labels"] == 300
    assert binned["1"]["brier"] == pytest.approx(exact["1"]["brier"])
    assert binned["1"]["roc_auc"] == pytest.approx(exact["1"]["roc_auc"], abs=5e-3)
