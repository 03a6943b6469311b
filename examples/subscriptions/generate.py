"""Seeded subscribers of a streaming service, written as a CSV like a billing export.

No customer id (rows are keyed by their content), a numeric 0/1 target `cancelled`, and
numeric, whole-number and categorical columns. Usage:
`python -m examples.subscriptions.generate --rows 5000 --out subscriptions.csv`
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

PLANS = ("basic", "standard", "premium", "family")
PLAN_SHARE = (0.35, 0.35, 0.2, 0.1)
PLAN_FEE = (7.99, 12.99, 17.99, 22.99)
CHANNELS = ("web", "app", "partner", "tv")
CHANNEL_SHARE = (0.4, 0.3, 0.2, 0.1)
# Share of subscribers whose viewing hours are unknown (opted out of tracking): blank cells.
UNTRACKED_SHARE = 0.04


def generate(rows: int, seed: int = 7) -> pd.DataFrame:
    """`rows` subscribers with a plausible cancellation signal (same seed, same rows)."""
    if rows <= 0:
        raise ValueError(f"rows must be positive, got {rows}")
    rng = np.random.default_rng(seed)
    plan = rng.choice(len(PLANS), rows, p=PLAN_SHARE)
    channel = rng.choice(len(CHANNELS), rows, p=CHANNEL_SHARE)
    tenure = np.clip(rng.gamma(1.4, 14, rows).round(), 1, 96).astype(int)
    fee = np.asarray(PLAN_FEE)[plan] * rng.choice([1.0, 0.8], rows, p=[0.85, 0.15])
    hours = np.clip(rng.gamma(2.0, 4.0 + 1.5 * plan, rows), 0, 80).round(1)
    devices = np.clip(rng.poisson(1.2 + 0.6 * plan, rows) + 1, 1, 8)
    tickets = np.clip(rng.poisson(0.8, rows), 0, 15)
    failures = np.clip(rng.poisson(0.35, rows), 0, 6)
    logit = (
        0.9
        - 0.07 * tenure
        - 0.2 * hours
        + 0.55 * tickets
        + 1.1 * failures
        + 0.08 * (fee - 12)
        - 0.3 * (devices - 1)
        + 0.6 * (channel == CHANNELS.index("partner"))
        + rng.normal(0, 0.5, rows)
    )
    cancelled = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    hours_text = np.where(rng.random(rows) < UNTRACKED_SHARE, "", hours.astype(str))
    return pd.DataFrame(
        {
            "plan": np.asarray(PLANS)[plan],
            "monthly_fee": fee.round(2),
            "tenure_months": tenure,
            "weekly_watch_hours": hours_text,
            "devices": devices,
            "support_tickets_90d": tickets,
            "payment_failures": failures,
            "signup_channel": np.asarray(CHANNELS)[channel],
            "cancelled": cancelled,
        }
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000, help="subscribers to write")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument("--out", type=Path, default=Path("subscriptions.csv"), help="CSV to write")
    args = parser.parse_args(argv)
    generate(args.rows, args.seed).to_csv(args.out, index=False)
    print(f"wrote {args.rows:,} subscribers to {args.out}")


if __name__ == "__main__":
    main()
