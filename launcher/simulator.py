"""Traffic simulator: realistic (optionally drifted) requests and delayed labels over HTTP."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import numpy as np
import pandas as pd

from churnops.contract import FEATURES, ID_COLUMN, TARGET_COLUMN
from churnops.data.synthetic import DriftSpec, generate_customers

# A market shift: pricier plans, newer customers, fewer monthly contracts, and long contracts
# no longer protecting against churn (the old model's strongest signal turns wrong).
DRIFTED = DriftSpec(
    monthly_charges_shift=15.0,
    tenure_scale=0.5,
    month_to_month_share_shift=-0.3,
    contract_effect=-1.0,
)


@dataclass
class SimulationResult:
    requests: int = 0
    predictions: int = 0
    labels_sent: int = 0
    errors: int = 0


def request_records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Contract records as JSON-ready dicts (NaN TotalCharges becomes null)."""
    records = []
    columns = [ID_COLUMN, *(spec.name for spec in FEATURES)]
    for row in frame.loc[:, columns].astype(object).itertuples(index=False):
        record = dict(zip(columns, row, strict=True))
        for key, value in record.items():
            if isinstance(value, float) and math.isnan(value):
                record[key] = None
            elif isinstance(value, np.integer):
                record[key] = int(value)
        records.append(record)
    return records


def simulate(
    base_url: str,
    rows: int,
    *,
    drifted: bool = False,
    seed: int = 1234,
    batch_size: int = 200,
    label_fraction: float = 1.0,
    label_delay_seconds: float = 0.0,
    on_progress: Callable[[int], None] | None = None,
    timeout: float = 30.0,
) -> SimulationResult:
    """Send `rows` customers in batches, then their true labels to /feedback."""
    frame = generate_customers(rows, seed=seed, drift=DRIFTED if drifted else None)
    frame[ID_COLUMN] = f"sim{seed}-" + frame[ID_COLUMN].astype(str)
    truth = dict(zip(frame[ID_COLUMN], frame[TARGET_COLUMN].astype(str), strict=True))
    result = SimulationResult()
    answered: list[dict[str, object]] = []
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        for start in range(0, rows, batch_size):
            chunk = request_records(frame.iloc[start : start + batch_size])
            response = client.post("/predict_batch", json={"customers": chunk})
            result.requests += 1
            if response.status_code != 200:
                result.errors += 1
                continue
            predictions = response.json()["predictions"]
            result.predictions += len(predictions)
            answered.extend(predictions)
            if on_progress is not None:
                on_progress(len(chunk))
        if label_delay_seconds:
            time.sleep(label_delay_seconds)
        rng = np.random.default_rng(seed)
        labelled = [p for p in answered if rng.random() < label_fraction]
        for start in range(0, len(labelled), 2000):
            labels = [
                {"request_id": p["request_id"], "Churn": truth[p["customerID"]]}
                for p in labelled[start : start + 2000]
            ]
            response = client.post("/feedback", json={"labels": labels})
            if response.status_code == 200:
                result.labels_sent += response.json()["stored"]
            else:
                result.errors += 1
    return result
