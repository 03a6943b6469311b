"""The request model generated from a contract: the Telco one and one it has never seen."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from pydantic import BaseModel, ValidationError

from churnops.contract import derive_row_id, parse_contract, telco_contract
from churnops.data.cleaning import clean_customers
from churnops.records import record_id, record_model, records_to_rows
from tests.unit.serving.contracts import GYM

pytestmark = pytest.mark.unit


def _parse(model: type[BaseModel], record: dict) -> BaseModel:
    return model.model_validate_json(json.dumps(record))


def _error_fields(model: type[BaseModel], record: dict) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        _parse(model, record)
    return {str(error["loc"][0]) for error in caught.value.errors()}


def test_the_telco_record_takes_the_example_and_rejects_what_the_contract_forbids() -> None:
    contract = telco_contract()
    model = record_model(contract)
    example = contract.example_record()
    record = _parse(model, example)
    assert records_to_rows([record], contract) == [[example[n] for n in contract.feature_names]]
    assert _parse(model, {**example, "TotalCharges": None}).TotalCharges is None
    assert _error_fields(model, {**example, "Contract": "Forever"}) == {"Contract"}
    assert _error_fields(model, {**example, "tenure": 500}) == {"tenure"}
    assert _error_fields(model, {**example, "MonthlyCharges": "lots"}) == {"MonthlyCharges"}
    assert model.model_json_schema()["example"] == example


def test_a_record_without_id_with_boolean_and_open_categories() -> None:
    model = record_model(GYM)
    assert model is record_model(GYM)  # built once per contract
    schema = model.model_json_schema()
    assert set(schema["properties"]) == {"age", "has pass", "club", "plan", "visits"}
    assert set(schema["required"]) == {"age", "has pass", "club", "plan"}
    assert schema["properties"]["has pass"]["type"] == "boolean"
    assert schema["example"] == GYM.example_record()
    record = _parse(
        model, {"age": 30, "has pass": True, "club": "a club it never saw", "plan": "plus"}
    )
    rows = records_to_rows([record], GYM)
    assert rows == [[30, True, "a club it never saw", "plus", None]]
    assert derive_row_id(rows[0]) == derive_row_id([30, 1.0, "a club it never saw", "plus", None])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"has pass": "yes"}, "has pass"),  # booleans are JSON true/false
        ({"has pass": 1}, "has pass"),
        ({"club": "x" * 201}, "club"),  # open, but a label, not a document
        ({"club": 7}, "club"),
        ({"plan": "gold"}, "plan"),  # closed categories stay closed
        ({"age": 12}, "age"),
        ({"age": 30.5}, "age"),  # a whole-number float is an integer, a fraction is not
        ({"age": "30"}, "age"),
        ({"age": True}, "age"),
        ({"visits": "many"}, "visits"),
        ({"row_id": "r1"}, "row_id"),  # no id column: the id is derived, never sent
        ({"left": 1}, "left"),  # the label is not a request field
    ],
)
def test_the_non_telco_record_names_the_bad_field(change: dict, field: str) -> None:
    record = {"age": 30, "has pass": False, "club": "Leeds", "plan": "basic", **change}
    assert field in _error_fields(record_model(GYM), record)


@pytest.mark.parametrize(("sent", "kept"), [(15634602, "15634602"), (15634602.0, "15634602")])
def test_a_numeric_id_is_the_text_cleaning_makes_of_it(sent: object, kept: str) -> None:
    contract = telco_contract()
    example = contract.example_record()
    record = _parse(record_model(contract), {**example, "customerID": sent})
    assert record_id(record) == kept
    stored = pd.DataFrame([{**example, "customerID": sent, "Churn": "No"}])
    assert clean_customers(stored, "customers.parquet", contract).frame["customerID"][0] == kept
    assert _error_fields(record_model(contract), {**example, "customerID": True}) == {"customerID"}


def test_whole_number_floats_fill_integer_fields_nullable_or_not() -> None:
    record = _parse(
        record_model(GYM), {"age": 30.0, "has pass": False, "club": "a", "plan": "plus"}
    )
    assert records_to_rows([record], GYM)[0][0] == 30
    assert type(records_to_rows([record], GYM)[0][0]) is int
    raw = GYM.model_dump(mode="json", exclude_defaults=True)
    features = [{**f, "nullable": True} if f["name"] == "age" else f for f in raw["features"]]
    nullable = parse_contract({**raw, "features": features}, "test")
    model = record_model(nullable)
    base = {"has pass": False, "club": "a", "plan": "plus"}
    assert _parse(model, {**base, "age": 41.0}).age == 41
    assert _parse(model, {**base, "age": None}).age is None
    assert _error_fields(model, {**base, "age": 41.5}) == {"age"}
    assert _error_fields(model, {**base, "age": 100.0}) == {"age"}  # the range still holds
