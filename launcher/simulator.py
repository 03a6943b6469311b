"""Traffic simulator: realistic (optionally drifted) requests and delayed labels over HTTP.

Under the shipped Telco contract the synthetic generator makes the customers (with the Telco
drift preset below). Under any other contract there is no generator for the data, so the
customers are drawn from the champion's reference sample (holdout features and scores, stored
with its run) and each label is drawn from the champion's score for that customer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import numpy as np
import pandas as pd

from churnops.contract import Contract, Feature
from churnops.data.synthetic import DriftSpec, generate_customers, is_demo_contract
from churnops.monitoring.prediction_store import SCORE_COLUMN

# A market shift: pricier plans, newer customers, fewer monthly contracts, and long contracts
# no longer protecting against churn (the old model's strongest signal turns wrong).
DRIFTED = DriftSpec(
    monthly_charges_shift=15.0,
    tenure_scale=0.5,
    month_to_month_share_shift=-0.3,
    contract_effect=-1.0,
)
FEEDBACK_CHUNK = 2000


@dataclass
class SimulationResult:
    requests: int = 0
    predictions: int = 0
    labels_sent: int = 0
    errors: int = 0


@dataclass(frozen=True)
class Traffic:
    """Request records and, per record, its true label (the target's canonical label)."""

    records: list[dict[str, object]]
    labels: list[str]


def _json_value(feature: Feature | None, value: object) -> object:
    """A cell as the API takes it: NaN as null, booleans as true/false, numpy as Python."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if feature is not None and feature.kind == "boolean":
        return bool(value)
    if feature is not None and feature.kind == "integer":
        return int(value)  # type: ignore[call-overload]
    if feature is not None and feature.kind == "numeric":
        return float(value)  # type: ignore[arg-type]
    if isinstance(value, np.generic):
        return value.item()
    return value if feature is None or feature.kind != "categorical" else str(value)


def request_records(frame: pd.DataFrame, contract: Contract) -> list[dict[str, object]]:
    """Contract records as JSON-ready dicts: the id (when the contract has one) and every
    feature, missing values as null."""
    columns = [*((contract.id_column,) if contract.id_column else ()), *contract.feature_names]
    features = [contract.by_name.get(column) for column in columns]
    return [
        {
            column: _json_value(feature, value)
            for column, feature, value in zip(columns, features, row, strict=True)
        }
        for row in frame.loc[:, columns].astype(object).itertuples(index=False)
    ]


def synthetic_traffic(contract: Contract, rows: int, seed: int, drifted: bool) -> Traffic:
    """Telco demo customers from the generator (ids made unique to this seed)."""
    frame = generate_customers(rows, seed=seed, drift=DRIFTED if drifted else None)
    id_column = contract.id_column or contract.id_name
    frame[id_column] = f"sim{seed}-" + frame[id_column].astype(str)
    labels = frame[contract.target.name].map(contract.target.canonical).tolist()
    return Traffic(request_records(frame, contract), labels)


def reference_traffic(
    contract: Contract, reference: pd.DataFrame, rows: int, seed: int, drifted: bool
) -> Traffic:
    """Customers drawn from the champion's reference sample; each label is drawn from the
    champion's score for that customer. Drifted traffic over-samples the riskiest customers
    (weights rise with the square of the score), which moves features and scores alike."""
    missing = [name for name in (*contract.feature_names, SCORE_COLUMN) if name not in reference]
    if missing:
        raise ValueError(
            f"the champion's reference sample lacks {missing}: it was trained on another "
            f"contract than '{contract.dataset}'"
        )
    if reference.empty:
        raise ValueError("the champion's reference sample is empty")
    rng = np.random.default_rng(seed)
    scores = reference[SCORE_COLUMN].to_numpy(dtype=float)
    weights = None
    if drifted:
        weights = np.square(scores) + 1e-9
        weights = weights / weights.sum()
    picked = rng.choice(len(reference), size=rows, replace=True, p=weights)
    frame = reference.iloc[picked].reset_index(drop=True)
    if contract.id_column:
        frame[contract.id_column] = [f"sim{seed}-{i}" for i in range(rows)]
    churned = rng.random(rows) < scores[picked]
    target = contract.target
    labels = [target.positive_label if c else target.negative_label for c in churned]
    return Traffic(request_records(frame, contract), labels)


def simulate(
    base_url: str,
    rows: int,
    *,
    contract: Contract,
    reference: pd.DataFrame | None = None,
    drifted: bool = False,
    seed: int = 1234,
    batch_size: int = 200,
    label_fraction: float = 1.0,
    label_delay_seconds: float = 0.0,
    on_progress: Callable[[int], None] | None = None,
    timeout: float = 30.0,
) -> SimulationResult:
    """Send `rows` customers in batches, then their true labels to /feedback. `reference`
    (the champion's reference sample) is needed for any contract but the Telco demo."""
    if is_demo_contract(contract):
        traffic = synthetic_traffic(contract, rows, seed, drifted)
    elif reference is None:
        raise ValueError(
            f"contract '{contract.dataset}' has no synthetic generator: simulating it needs the "
            "champion's reference sample (train a champion first)"
        )
    else:
        traffic = reference_traffic(contract, reference, rows, seed, drifted)
    result = SimulationResult()
    answered: list[tuple[str, str]] = []  # (request id, true label)
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        for start in range(0, rows, batch_size):
            chunk = traffic.records[start : start + batch_size]
            response = client.post("/predict_batch", json={"customers": chunk})
            result.requests += 1
            if response.status_code != 200:
                result.errors += 1
                continue
            predictions = response.json()["predictions"]
            result.predictions += len(predictions)
            truth = traffic.labels[start : start + batch_size]
            answered += [
                (p["request_id"], label) for p, label in zip(predictions, truth, strict=True)
            ]
            if on_progress is not None:
                on_progress(len(chunk))
        if label_delay_seconds:
            time.sleep(label_delay_seconds)
        rng = np.random.default_rng(seed)
        labelled = [pair for pair in answered if rng.random() < label_fraction]
        target = contract.target.name
        for start in range(0, len(labelled), FEEDBACK_CHUNK):
            labels = [
                {"request_id": request_id, target: label}
                for request_id, label in labelled[start : start + FEEDBACK_CHUNK]
            ]
            response = client.post("/feedback", json={"labels": labels})
            if response.status_code == 200:
                result.labels_sent += response.json()["stored"]
            else:
                result.errors += 1
    return result
