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

    def summary(self) -> dict[str, float | int | str]:
        return {
            "train_rows": len(self.train),
            "holdout_rows": len(self.holdout),
            "train_churn_rate": round(float(self.train[self.target].mean()), 4),
            "holdout_churn_rate": round(float(self.holdout[self.target].mean()), 4),
            "holdout_fraction": self.holdout_fraction,
            "split_seed": self.seed,
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
