"""Seeded, vectorized synthetic customers in the Telco schema (the shipped default contract),
with a realistic churn signal: the demo data, not a generator for other contracts.

Drift knobs shift feature distributions (and optionally the churn relationship itself) so demos
and tests can produce traffic that the monitor should flag.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnops.contract import Contract, telco_contract

# The generator's own schema: the shipped Telco contract, whatever contract a deployment uses.
TELCO = telco_contract()
ID_COLUMN = TELCO.id_name
TARGET_COLUMN = TELCO.target.name
CHURN_LABELS = (TELCO.target.negative_label, TELCO.target.positive_label)


def is_demo_contract(contract: Contract) -> bool:
    """The generator makes data for `contract` (the shipped Telco one, by fingerprint)."""
    return contract.fingerprint == TELCO.fingerprint


@dataclass(frozen=True)
class DriftSpec:
    """Distribution shifts; the defaults are the reference population. `price_sensitivity`
    and `contract_effect` change how churn depends on the features (concept drift); the rest
    move feature distributions."""

    tenure_scale: float = 1.0
    monthly_charges_shift: float = 0.0
    fiber_share_shift: float = 0.0
    month_to_month_share_shift: float = 0.0
    churn_logit_shift: float = 0.0
    price_sensitivity: float = 0.0
    contract_effect: float = 1.0

    @property
    def is_reference(self) -> bool:
        return self == DriftSpec()


def _categorical(name: str, codes: np.ndarray) -> pd.Categorical:
    categories = TELCO.by_name[name].categories if name != TARGET_COLUMN else CHURN_LABELS
    return pd.Categorical.from_codes(codes.astype(np.int8), categories=list(categories))


def _shifted(probabilities: list[float], first_shift: float) -> np.ndarray:
    """Move probability mass onto the first option, renormalising the rest."""
    p = np.asarray(probabilities, dtype=float)
    first = float(np.clip(p[0] + first_shift, 0.01, 0.98))
    rest = p[1:] / p[1:].sum() * (1.0 - first)
    return np.concatenate([[first], rest])


def _choice(rng: np.random.Generator, n: int, p: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.cumsum(p), rng.random(n), side="right").clip(0, len(p) - 1)


def generate_customers(n_rows: int, seed: int = 42, drift: DriftSpec | None = None) -> pd.DataFrame:
    """Return `n_rows` customers with a churn label; same seed and drift give the same rows."""
    if n_rows <= 0:
        raise ValueError(f"n_rows must be positive, got {n_rows}")
    drift = drift or DriftSpec()
    rng = np.random.default_rng(seed)
    n = n_rows

    contract = _choice(rng, n, _shifted([0.55, 0.21, 0.24], drift.month_to_month_share_shift))
    tenure_mean = np.array([16.0, 40.0, 56.0])[contract] * drift.tenure_scale
    tenure = np.clip(rng.gamma(2.0, tenure_mean / 2.0), 0, 72).round().astype(np.int64)
    # Internet service codes follow the contract: 0 DSL, 1 Fiber optic, 2 No.
    internet_p = _shifted([0.44, 0.34, 0.22], drift.fiber_share_shift)[[1, 0, 2]]
    internet = _choice(rng, n, internet_p)
    has_internet = internet != 2
    phone = (rng.random(n) < 0.9).astype(np.int8)
    multiple = np.where(phone == 1, (rng.random(n) < 0.47).astype(np.int8), 2)

    def addon(p_yes: float) -> np.ndarray:
        return np.where(has_internet, (rng.random(n) < p_yes).astype(np.int8), 2)

    security, backup, protection = addon(0.35), addon(0.42), addon(0.43)
    support, tv, movies = addon(0.36), addon(0.49), addon(0.49)
    senior = (rng.random(n) < 0.16).astype(np.int64)
    partner = (rng.random(n) < 0.48).astype(np.int8)
    dependents = (rng.random(n) < np.where(partner == 1, 0.52, 0.1)).astype(np.int8)
    paperless = (rng.random(n) < 0.59).astype(np.int8)
    echeck_p = np.where(contract == 0, 0.48, 0.18)
    other = _choice(rng, n, np.array([0.35, 0.33, 0.32])) + 1
    payment = np.where(rng.random(n) < echeck_p, 0, other)

    addons_on = sum((a == 1).astype(np.int64) for a in (security, backup, protection, support))
    streams_on = (tv == 1).astype(np.int64) + (movies == 1).astype(np.int64)
    monthly = (
        18.0
        + 6.0 * phone
        + 5.0 * (multiple == 1)
        + np.array([27.0, 52.0, 0.0])[internet]
        + 5.0 * addons_on
        + 9.0 * streams_on
        + rng.normal(0.0, 3.0, n)
        + drift.monthly_charges_shift
    )
    monthly = np.clip(monthly, 18.0, 400.0).round(2)
    total = (monthly * tenure * rng.normal(1.0, 0.04, n)).clip(0).round(2)
    total = np.where(tenure == 0, np.nan, np.maximum(total, monthly))

    logit = (
        -1.0
        + drift.contract_effect * np.array([1.1, -0.9, -2.2])[contract]
        - 0.035 * tenure
        + np.array([0.0, 0.85, -0.8])[internet]
        + 0.55 * (payment == 0)
        + 0.3 * senior
        + 0.3 * paperless
        - 0.45 * (security == 1)
        - 0.4 * (support == 1)
        - 0.2 * partner
        + 0.012 * (monthly - 65.0)
        + drift.churn_logit_shift
        + drift.price_sensitivity * (monthly - 65.0) / 30.0
    )
    churn = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)

    frame = pd.DataFrame(
        {
            ID_COLUMN: np.char.add(f"S{seed}-", np.arange(n).astype(str)).astype(object),
            "gender": _categorical("gender", rng.integers(0, 2, n)),
            "SeniorCitizen": senior,
            "Partner": _categorical("Partner", partner),
            "Dependents": _categorical("Dependents", dependents),
            "tenure": tenure,
            "PhoneService": _categorical("PhoneService", phone),
            "MultipleLines": _categorical("MultipleLines", multiple),
            "InternetService": _categorical("InternetService", internet),
            "OnlineSecurity": _categorical("OnlineSecurity", security),
            "OnlineBackup": _categorical("OnlineBackup", backup),
            "DeviceProtection": _categorical("DeviceProtection", protection),
            "TechSupport": _categorical("TechSupport", support),
            "StreamingTV": _categorical("StreamingTV", tv),
            "StreamingMovies": _categorical("StreamingMovies", movies),
            "Contract": _categorical("Contract", contract),
            "PaperlessBilling": _categorical("PaperlessBilling", paperless),
            "PaymentMethod": _categorical("PaymentMethod", payment),
            "MonthlyCharges": monthly,
            "TotalCharges": total,
            TARGET_COLUMN: _categorical(TARGET_COLUMN, churn),
        }
    )
    return frame[list(TELCO.columns)]
