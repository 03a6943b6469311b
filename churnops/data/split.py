"""Stratified, seeded train/holdout split whose parameters are recorded with the model."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import train_test_split

from churnops.contract import Contract
from churnops.data.fingerprint import frame_fingerprint


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame
    holdout_fraction: float
    seed: int
    target: str  # the 0/1 label column of both parts
    # The holdout's first `frozen_rows` rows are the base data's own holdout (the frozen
    # reference): no production label ever changes them. None: all of the holdout is.
    frozen_rows: int | None = None

    @property
    def frozen_holdout(self) -> pd.DataFrame:
        return self.holdout if self.frozen_rows is None else self.holdout.iloc[: self.frozen_rows]

    def summary(self) -> dict[str, float | int | str]:
        return {
            "train_rows": len(self.train),
            "holdout_rows": len(self.holdout),
            "train_churn_rate": round(float(self.train[self.target].mean()), 4),
            "holdout_churn_rate": round(float(self.holdout[self.target].mean()), 4),
            "holdout_fraction": self.holdout_fraction,
            "split_seed": self.seed,
            "frozen_holdout_rows": len(self.frozen_holdout),
            "train_fingerprint": frame_fingerprint(self.train),
            "holdout_fingerprint": frame_fingerprint(self.holdout),
        }


def stratified_split(
    frame: pd.DataFrame, contract: Contract, holdout_fraction: float = 0.2, seed: int = 42
) -> Split:
    """Keep the churn rate equal in both parts so holdout metrics are comparable across runs."""
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    train, holdout = train_test_split(
        frame,
        test_size=holdout_fraction,
        stratify=frame[contract.target.name],
        random_state=seed,
    )
    return Split(
        train=train.reset_index(drop=True),
        holdout=holdout.reset_index(drop=True),
        holdout_fraction=holdout_fraction,
        seed=seed,
        target=contract.target.name,
    )


def split_keeping_reference(
    frame: pd.DataFrame,
    base: pd.DataFrame,
    contract: Contract,
    holdout_fraction: float = 0.2,
    seed: int = 42,
) -> Split:
    """Split `frame` (the cleaned base data plus labelled production records) so that the base
    data's own holdout stays the frozen reference, whatever production labels say.

    The base is split exactly as `stratified_split` would split it alone. Its holdout rows are
    held out as they are in the base (a production label for one of those customers is left
    out, so a flood of wrong labels cannot rewrite the reference). Customers new in production
    are split by the same fraction, stratified when both classes allow it; everything else
    (base training customers, with their latest label) trains. With no production records this
    is `stratified_split(base)`."""
    reference = stratified_split(base, contract, holdout_fraction, seed)
    if frame.reset_index(drop=True).equals(base.reset_index(drop=True)):
        return reference
    key = contract.id_name
    new = frame[~frame[key].isin(base[key])]
    known = frame[frame[key].isin(reference.train[key])]
    new_train, new_holdout = _split_new(new, contract, holdout_fraction, seed)
    return Split(
        train=pd.concat([known, new_train], ignore_index=True),
        holdout=pd.concat([reference.holdout, new_holdout], ignore_index=True),
        holdout_fraction=holdout_fraction,
        seed=seed,
        target=contract.target.name,
        frozen_rows=len(reference.holdout),
    )


def _split_new(
    new: pd.DataFrame, contract: Contract, holdout_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Production-only customers: stratified when each class has two rows, else all train."""
    counts = new[contract.target.name].value_counts()
    if len(counts) < 2 or counts.min() < 2 or len(new) * holdout_fraction < 2:
        return new, new.iloc[0:0]
    train, holdout = train_test_split(
        new, test_size=holdout_fraction, stratify=new[contract.target.name], random_state=seed
    )
    return train, holdout
