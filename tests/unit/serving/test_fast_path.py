"""The lean prediction route (serving/fast_path.py) and the plain-record reader it trusts: the
reader never reads a record differently from the pydantic model, and the route leaves anything
it does not answer to the BentoML API with the body untouched."""

from __future__ import annotations

import asyncio
import json
import math
import random

import orjson
import pytest
from pydantic import ValidationError

from churnops.contract import Contract, derive_row_id, telco_contract
from churnops.records import (
    plain_record_reader,
    plain_records_reader,
    record_id,
    record_model,
    records_to_rows,
)
from serving.errors import Unavailable
from serving.fast_path import LEAN_HEADER, LeanPredictRoute, ReadBudget
from tests.unit.serving.contracts import GYM

pytestmark = pytest.mark.unit
TELCO = telco_contract()

ODD_VALUES = [
    None, True, False, 0, 1, -1, 2, 7, 120, 121, 1.0, 1.5, 3.0, -0.0, 1e308, 2**60, float("inf"),
    "", "Yes", "No", "DSL", "x" * 201, "Leeds", "basic", [], {}, "1",
]  # fmt: skip


def _mutations(contract: Contract, rng: random.Random, count: int) -> list[dict]:
    """Example records with one to three fields replaced, dropped or added."""
    names = [*contract.feature_names, contract.id_name, "unknown field"]
    records = []
    for _ in range(count):
        record = dict(contract.example_record())
        for _ in range(rng.randint(1, 3)):
            name = rng.choice(names)
            if rng.random() < 0.15:
                record.pop(name, None)
            else:
                record[name] = rng.choice(ODD_VALUES)
        records.append(record)
    return records


@pytest.mark.parametrize("contract", [TELCO, GYM], ids=["telco", "gym"])
def test_the_reader_never_reads_a_record_unlike_the_model(contract: Contract) -> None:
    read, model = plain_record_reader(contract), record_model(contract)
    plain = 0
    for record in _mutations(
        contract,
        random.Random(7),  # noqa: S311 - fuzzing, not secrets
        3000,
    ):
        body = json.dumps(record)  # as a client writes it (inf as Infinity)
        try:
            got = read(orjson.loads(body))
        except orjson.JSONDecodeError:  # the route leaves what orjson cannot read to the API
            got = None
        try:
            parsed = model.model_validate_json(body)
        except ValidationError:
            assert got is None, record  # the model refuses it: the API must answer it
            continue
        if got is None:
            continue  # left to the model, which accepts it: correct, only slower
        plain += 1
        (row,) = records_to_rows([parsed], contract)
        expected_id = record_id(parsed) if contract.has_id else derive_row_id(row)
        assert got == (expected_id, row), record
        assert [type(v) for v in got[1]] == [type(v) for v in row], record
    assert plain > 100  # valid mutations (new values in range) do take the lean route


@pytest.mark.parametrize("contract", [TELCO, GYM], ids=["telco", "gym"])
def test_a_batch_is_read_as_its_records_are_one_by_one(contract: Contract) -> None:
    """The column-at-a-time reader of a request: every record as the single-record reader
    (fuzzed against the model above) reads it, or None when any one is not plain."""
    read, read_many = plain_record_reader(contract), plain_records_reader(contract)
    rng = random.Random(11)  # noqa: S311 - fuzzing, not secrets
    pool = []
    for record in _mutations(contract, rng, 3000):
        try:  # as the route decodes a body (orjson reads no Infinity: the API gets those)
            pool.append(orjson.loads(json.dumps(record)))
        except orjson.JSONDecodeError:
            continue
    plain = [record for record in pool if read(record) is not None]
    odd = [record for record in pool if read(record) is None]
    assert len(plain) > 100 and len(odd) > 300
    for size in [1, 2, 7, 8, 9, 40, 500] * 20:
        batch = rng.choices(plain, k=size)
        _assert_read_alike(read_many(batch), [read(record) for record in batch])
        batch[rng.randrange(size)] = rng.choice(odd)  # one record not plain spoils the batch
        assert read_many(batch) is None


def _assert_read_alike(got: list | None, expected: list) -> None:
    """Equal values of equal types (1 == 1.0 == True would hide a value read as another)."""
    assert got == expected
    for (got_id, got_row), (want_id, want_row) in zip(got, expected, strict=True):
        assert type(got_id) is type(want_id)
        assert [type(v) for v in got_row] == [type(v) for v in want_row]


# (field, a value at an edge of what is plain, values just past it or of another JSON type)
TELCO_EDGES = [
    ("tenure", 120, [121, -1, 12.0, True, None]),
    ("tenure", 0, [2**70, "3"]),
    ("MonthlyCharges", 1000.0, [1000.5, -0.5, 70, 1e308, None]),
    ("TotalCharges", 200000.0, [200000.5, 12, None, False]),
    ("SeniorCitizen", 1, [2, 1.0, False]),
    ("customerID", "x" * TELCO.max_id_length, ["x" * (TELCO.max_id_length + 1), 7, None]),
]


@pytest.mark.parametrize(("field", "edge", "others"), TELCO_EDGES)
def test_whole_records_are_read_a_column_at_a_time_as_one_by_one(
    field: str, edge: object, others: list
) -> None:
    """Batches of records holding every field take the gathered path; a column of one type in
    range is kept as it is, anything else in it is read value by value, as alone."""
    read, read_many = plain_record_reader(TELCO), plain_records_reader(TELCO)
    base = orjson.loads(json.dumps(TELCO.example_record()))
    assert base.keys() == {*TELCO.feature_names, TELCO.id_name}
    for other in [edge, *others]:
        batch = [dict(base, **{field: edge}) for _ in range(20)]
        batch[13] = dict(base, **{field: other})
        alone = [read(record) for record in batch]
        if None in alone:
            assert read_many(batch) is None, (field, other)
        else:
            _assert_read_alike(read_many(batch), alone)


def test_everyday_records_are_plain() -> None:
    read = plain_record_reader(TELCO)
    example = TELCO.example_record()
    assert read(example) == ("customer-0001", [example[n] for n in TELCO.feature_names])
    assert read({**example, "TotalCharges": None})[1][-1] is None
    assert read({**example, "customerID": 15634602})[0] == "15634602"
    assert read({**example, "MonthlyCharges": 30})[1][-2] == 30.0


class _Runtime:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.scored: list = []

    async def score(self, customers, explain):
        if self.fail:
            raise Unavailable("no champion model loaded yet")
        self.scored.append(customers)
        model = type("Model", (), {"version": "4"})
        return [
            type("Scored", (), {"request_id": f"r{i}", "customer_id": c, "score": 0.75,
                                "answer": "Yes", "model": model})
            for i, (c, _) in enumerate(customers)
        ]  # fmt: skip


def _call(route: LeanPredictRoute, path: str, body: bytes) -> tuple[list[dict], list[bytes]]:
    """(messages the route sent, bodies the app behind it received)."""
    sent, passed = [], []

    async def app(scope, receive, send):
        passed.append((await receive())["body"])

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": []}
    route.app = app
    asyncio.run(route(scope, receive, send))
    return sent, passed


def test_the_route_answers_plain_requests_and_passes_everything_else_on_untouched() -> None:
    runtime = _Runtime()
    route = LeanPredictRoute(None, TELCO, lambda: runtime, max_batch=2)
    example = TELCO.example_record()
    sent, passed = _call(route, "/predict", orjson.dumps({"customer": example}))
    assert passed == [] and LEAN_HEADER in sent[0]["headers"]
    answer = orjson.loads(sent[1]["body"])
    assert answer == {
        "request_id": "r0", "customerID": "customer-0001", "churn_probability": 0.75,
        "churn": "Yes", "model_version": "4", "reasons": None,
    }  # fmt: skip
    batch = orjson.dumps({"customers": [example, example]})
    sent, _ = _call(route, "/predict_batch", batch)
    assert [p["request_id"] for p in orjson.loads(sent[1]["body"])["predictions"]] == ["r0", "r1"]
    for path, body in [
        ("/predict", orjson.dumps({"customer": {**example, "tenure": 500}})),
        ("/predict", orjson.dumps({"customer": example, "explain": True})),
        ("/predict", b"{not json"),
        ("/predict_batch", orjson.dumps({"customers": [example] * 3})),  # over the limit
        ("/predict_batch", orjson.dumps({"customers": []})),
        ("/feedback", orjson.dumps({"labels": []})),
    ]:
        sent, passed = _call(route, path, body)
        assert (sent, passed) == ([], [body]), body
    assert len(runtime.scored) == 2


def test_a_worker_that_cannot_answer_leaves_the_refusal_to_the_api() -> None:
    body = orjson.dumps({"customer": TELCO.example_record()})
    for route in (
        LeanPredictRoute(None, TELCO, lambda: _Runtime(fail=True), max_batch=10),
        LeanPredictRoute(None, TELCO, lambda: None, max_batch=10),  # service not created yet
    ):
        assert _call(route, "/predict", body) == ([], [body])


def test_the_read_budget_lets_bodies_through_while_they_fit_and_one_at_any_size() -> None:
    budget = ReadBudget(limit=10)
    inside: list[int] = []
    most: list[int] = []

    async def request(size: int) -> None:
        async with budget.hold(size):
            inside.append(size)
            most.append(sum(inside))
            await asyncio.sleep(0.01)
            inside.remove(size)

    async def main() -> None:
        await asyncio.gather(*(request(size) for size in (6, 6, 6, 25, 2, 2, 2)))

    asyncio.run(main())
    assert budget.used == 0
    assert max(most) <= 25 and 25 in most  # larger than the budget: alone
    assert all(total <= 10 for total in most if total != 25)
    assert max(total for total in most if total != 25) > 6  # small ones share the budget


@pytest.mark.parametrize("odd", [math.nan, math.inf, 1e308])
def test_a_column_with_a_non_finite_number_is_not_kept_whole(odd: float) -> None:
    """Decoders other than orjson do hand over NaN and infinities; a range without a maximum
    must not let them through with the rest of their column (1e308 is fine, if summed to inf)."""
    read, read_many = plain_record_reader(GYM), plain_records_reader(GYM)
    base = GYM.example_record()
    batch = [dict(base, visits=1e308) for _ in range(12)]
    batch[5] = dict(base, visits=odd)
    alone = [read(record) for record in batch]
    if None in alone:
        assert read_many(batch) is None
    else:
        _assert_read_alike(read_many(batch), alone)
