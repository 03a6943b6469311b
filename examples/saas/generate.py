"""Seeded B2B SaaS accounts, written as a CSV like a CRM export.

An `account_id` key, a true/false target `churned`, boolean flags (`has_sso` true/false,
`annual_billing` yes/no), an open categorical (`industry`: many values, new ones appear) and a
closed one (`plan`). Usage: `python -m examples.saas.generate --rows 5000 --out saas.csv`
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

PLANS = ("starter", "growth", "enterprise")
PLAN_SHARE = (0.5, 0.35, 0.15)
REGIONS = ("AMER", "EMEA", "APAC")
# Industry families x segments: 96 values, far more than a contract should list one by one.
FAMILIES = (
    "software",
    "retail",
    "banking",
    "insurance",
    "healthcare",
    "logistics",
    "education",
    "media",
    "manufacturing",
    "energy",
    "hospitality",
    "government",
)
SEGMENTS = ("services", "platforms", "wholesale", "consulting", "b2b", "b2c", "nonprofit", "labs")
INDUSTRIES = tuple(f"{family} {segment}" for family in FAMILIES for segment in SEGMENTS)
# Survey answered by most accounts; the rest have a blank NPS.
NPS_RESPONSE_RATE = 0.7


def generate(rows: int, seed: int = 11) -> pd.DataFrame:
    """`rows` accounts with a plausible churn signal (same seed, same rows)."""
    if rows <= 0:
        raise ValueError(f"rows must be positive, got {rows}")
    rng = np.random.default_rng(seed)
    plan = rng.choice(len(PLANS), rows, p=PLAN_SHARE)
    popularity = 1.0 / np.arange(1, len(INDUSTRIES) + 1)
    industry = rng.choice(len(INDUSTRIES), rows, p=popularity / popularity.sum())
    seats = np.clip(rng.lognormal(2.2 + 1.1 * plan, 0.8, rows).round(), 1, 5000).astype(int)
    active = np.clip(rng.beta(4, 2.5, rows), 0, 1).round(3)
    has_sso = rng.random(rows) < 0.15 + 0.3 * plan
    annual = rng.random(rows) < 0.3 + 0.2 * plan
    tickets = np.clip(rng.poisson(1.5 + 0.002 * seats), 0, 60)
    nps = np.clip(rng.normal(25 + 40 * (active - 0.6), 30, rows).round(), -100, 100).astype(int)
    months_left = np.where(annual, rng.integers(0, 13, rows), rng.integers(0, 2, rows))
    family_risk = rng.normal(0, 0.4, len(FAMILIES))[industry // len(SEGMENTS)]
    logit = (
        -0.6
        - 6.0 * (active - 0.6)
        - 1.2 * has_sso
        - 1.4 * annual
        + 0.15 * tickets
        - 0.015 * nps
        - 0.12 * months_left
        - 0.3 * plan
        + family_risk
        + rng.normal(0, 0.4, rows)
    )
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    answered = rng.random(rows) < NPS_RESPONSE_RATE
    return pd.DataFrame(
        {
            "account_id": [f"ACC-{seed:03d}-{i:07d}" for i in range(rows)],
            "plan": np.asarray(PLANS)[plan],
            "region": rng.choice(REGIONS, rows, p=(0.5, 0.3, 0.2)),
            "industry": np.asarray(INDUSTRIES)[industry],
            "seats": seats,
            "active_user_ratio": active,
            "has_sso": np.where(has_sso, "true", "false"),
            "annual_billing": np.where(annual, "yes", "no"),
            "support_tickets_30d": tickets,
            "nps": np.where(answered, nps.astype(str), ""),
            "contract_months_left": months_left,
            "churned": np.where(churned, "true", "false"),
        }
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000, help="accounts to write")
    parser.add_argument("--seed", type=int, default=11, help="random seed")
    parser.add_argument("--out", type=Path, default=Path("saas.csv"), help="CSV to write")
    args = parser.parse_args(argv)
    generate(args.rows, args.seed).to_csv(args.out, index=False)
    print(f"wrote {args.rows:,} accounts to {args.out}")


if __name__ == "__main__":
    main()
