"""Rollout tests' shared pieces: versions whose live quality is known in advance, and waiting
for a Bento server to follow both aliases."""

from __future__ import annotations

import time

import httpx
import numpy as np

from churnops.contract import telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.synthetic import generate_customers
from churnops.model import recipes
from registry.mlflow_registry import MlflowModelRegistry

TELCO = telco_contract()


def register_flipped(registry: MlflowModelRegistry, name: str, seed: int, flip: float) -> str:
    """A logistic regression trained with a share `flip` of its labels inverted: 0.45 gives a
    weak model (live AUC about 0.73), 0 a good one (0.89), 1 one that ranks backwards (0.11)."""
    frame = clean_customers(generate_customers(1_500, seed=seed), "synthetic", TELCO).frame
    flipped = np.random.default_rng(seed).random(len(frame)) < flip
    frame.loc[flipped, "Churn"] = 1 - frame.loc[flipped, "Churn"]
    model = recipes.train(frame, "logistic_regression", seed=0, contract=TELCO)
    run = registry.log_candidate(name, model, {"flip": flip}, {}, contract=TELCO)
    return registry.register(run, {})


def wait_for_rollout(url: str, champion: str, challenger: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        status = httpx.get(f"{url}/model").json()
        shadowed = (status.get("rollout") or {}).get("challenger") or {}
        if (status["model_version"], shadowed.get("model_version")) == (champion, challenger):
            return
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
