"""The split with production labels: the base data's holdout stays the frozen reference."""

from __future__ import annotations

import pandas as pd
import pytest

from churnops.contract import telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.split import split_keeping_reference, stratified_split
from churnops.data.synthetic import generate_customers

pytestmark = pytest.mark.unit

TELCO = telco_contract()
KEY, TARGET = "customerID", "Churn"


def _clean(raw: pd.DataFrame) -> pd.DataFrame:
    return clean_customers(raw, "test", TELCO).frame


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    return _clean(generate_customers(1000, seed=3))


def test_without_production_rows_it_is_the_plain_split(base: pd.DataFrame) -> None:
    kept = split_keeping_reference(base, base, TELCO, 0.2, 42)
    plain = stratified_split(base, TELCO, 0.2, 42)
    pd.testing.assert_frame_equal(kept.train, plain.train)
    pd.testing.assert_frame_equal(kept.holdout, plain.holdout)
    assert kept.frozen_rows is None and len(kept.frozen_holdout) == 200


def test_production_labels_never_rewrite_the_frozen_holdout(base: pd.DataFrame) -> None:
    reference = stratified_split(base, TELCO, 0.2, 42)
    held, trained = reference.holdout.iloc[0][KEY], reference.train.iloc[0][KEY]
    production = _clean(generate_customers(500, seed=4)).assign(
        customerID=lambda f: "new-" + f[KEY].astype(str)
    )
    relabelled = base[base[KEY].isin([held, trained])].assign(Churn=lambda f: 1 - f[TARGET])
    # What cleaning makes of base + production: the production row wins a shared id.
    stacked = pd.concat([base, production, relabelled], ignore_index=True)
    frame = stacked.drop_duplicates(KEY, keep="last").reset_index(drop=True)

    split = split_keeping_reference(frame, base, TELCO, 0.2, 42)

    pd.testing.assert_frame_equal(split.frozen_holdout, reference.holdout)
    assert split.frozen_rows == 200 and len(split.holdout) == 200 + 100
    assert not set(split.train[KEY]) & set(split.holdout[KEY])
    assert held not in set(split.train[KEY])  # a frozen customer's new label is left out
    new_label = split.train.set_index(KEY).loc[trained, TARGET]
    assert new_label == 1 - base.set_index(KEY).loc[trained, TARGET]  # the latest label trains
    assert len(split.train) == 800 + 400
    assert split.summary()["frozen_holdout_rows"] == 200


def test_too_few_production_rows_all_train(base: pd.DataFrame) -> None:
    production = _clean(generate_customers(3, seed=5)).assign(
        customerID=lambda f: "new-" + f[KEY].astype(str)
    )
    frame = pd.concat([base, production], ignore_index=True)
    split = split_keeping_reference(frame, base, TELCO, 0.2, 42)
    assert len(split.holdout) == 200 and len(split.train) == 803
