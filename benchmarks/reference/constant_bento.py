"""The framework ceiling: a BentoML service that takes the benchmark's request bodies and
answers a constant, with BentoML's access log and metrics off and the collector frozen after
start-up. Our service cannot be faster than this on BentoML's request path.

    bentoml serve benchmarks.reference.constant_bento:ConstantAnswer
"""

from __future__ import annotations

import gc

import bentoml

from benchmarks.reference import ANSWER


@bentoml.service(
    name="constant_answer",
    logging={"access": {"enabled": False}},
    metrics={"enabled": False},
)
class ConstantAnswer:
    def __init__(self) -> None:
        gc.freeze()

    @bentoml.api(route="/predict")
    async def predict(self, customer: dict) -> dict:
        return ANSWER

    @bentoml.api(route="/predict_batch")
    async def predict_batch(self, customers: list[dict]) -> dict:
        return {"model_version": "0", "predictions": [ANSWER] * len(customers)}
