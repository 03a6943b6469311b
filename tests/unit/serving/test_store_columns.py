"""The prediction store's columns under contracts whose names come close to its own."""

from __future__ import annotations

import pytest
from sqlalchemy import BigInteger

from churnops.contract import Contract, parse_contract
from churnops.monitoring import prediction_store
from churnops.monitoring.prediction_store import (
    ANSWER_COLUMN,
    PREDICTED_COLUMN,
    StoreSchemaError,
    store_schema,
)
from tests.unit.serving.contracts import GYM

pytestmark = pytest.mark.unit

RAW = GYM.model_dump(mode="json", exclude_defaults=True)


def _variant(**changes: object) -> Contract:
    return parse_contract({**RAW, **changes}, "test")


def _rows(contract: Contract, count: int, answer: str) -> list[dict[str, object]]:
    return [
        {
            "request_id": f"q{i}",
            "ts": float(i + 1),
            "model_version": "1",
            contract.id_name: f"r{i}",
            **GYM.example_record(),
            "age": 2**40 + i,  # beyond 32 bits
            "churn_probability": 0.75,
            ANSWER_COLUMN: answer,
        }
        for i in range(count)
    ]


def test_a_target_called_churn_stays_apart_from_the_served_answer() -> None:
    target = {"name": "churn", "positive": [1], "negative": [0]}
    features = [{**f, "maximum": 2**41} if f["name"] == "age" else f for f in RAW["features"]]
    contract = _variant(dataset="churn-target", target=target, features=features)
    engine = prediction_store.connect("sqlite://", contract)
    prediction_store.write_predictions(engine, contract, _rows(contract, 3, answer="1"))
    prediction_store.write_feedback(engine, contract, [{"request_id": "q0", "churn": 0}])
    window = prediction_store.read_predictions(engine, contract=contract)
    assert list(window[PREDICTED_COLUMN]) == ["1", "1", "1"]  # what was served
    assert list(window["churn"].fillna("-")) == ["0", "-", "-"]  # what happened
    assert list(window["age"]) == [2**40, 2**40 + 1, 2**40 + 2]
    labelled = prediction_store.labelled_records(engine, contract)
    assert list(labelled["churn"]) == ["0"] and labelled["age"][0] == 2**40


def test_integer_features_are_big_integers() -> None:
    assert isinstance(store_schema(GYM).predictions.c["age"].type, BigInteger)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"target": {"name": "TS", "positive": [1], "negative": [0]}}, "'ts' and 'TS'"),
        ({"target": {"name": "Predicted_Churn", "positive": [1], "negative": [0]}}, "Predicted"),
        ({"id_column": "Request_ID"}, "'request_id' and 'Request_ID'"),
        ({"features": [*RAW["features"], {"name": "Churn", "kind": "numeric"}]}, "'Churn'"),
        (
            {
                "header_match": "exact",
                "features": [*RAW["features"], {"name": "Age", "kind": "integer"}],
            },
            "'age' and 'Age'",
        ),
    ],
)
def test_names_sql_cannot_tell_apart_are_refused_by_name(changes: dict, named: str) -> None:
    contract = _variant(dataset="clash", **changes)
    with pytest.raises(StoreSchemaError, match="rename them in the contract") as caught:
        store_schema(contract)
    assert named in str(caught.value)
