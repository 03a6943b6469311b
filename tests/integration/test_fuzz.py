"""Fuzz the prediction API from its own OpenAPI spec (schemathesis) against a real Bento server:
valid and invalid requests alike get a 2xx that matches the spec or a 4xx that says what was
wrong; nothing gets a 5xx and the server keeps serving. The batch-size limit answers 413."""

from __future__ import annotations

import time
from collections import Counter

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from churnops.contract import telco_contract
from serving.service import MAX_BATCH
from tests.conftest import start_bento, wait_ready
from tests.integration.conftest import SERVED_MODEL

pytestmark = pytest.mark.integration

TELCO = telco_contract()
example_record = TELCO.example_record

PATHS = ["/predict", "/predict_batch", "/feedback"]
EXAMPLES_PER_MODE = 60  # x 3 operations x (valid, invalid) = up to 360 requests


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str, served_champion: str):
    bento = start_bento(tmp_path_factory.mktemp("fuzz"), mlflow_uri, SERVED_MODEL)
    wait_ready(bento)
    yield bento
    bento.stop()


def _reason(response: requests.Response) -> str | None:
    """The error text of a 4xx body (the guard's object or BentoML's one-item list)."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, list) and body:
        body = body[0]
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return None
    messages = [d.get("msg") for d in body.get("detail") or [] if isinstance(d, dict)]
    if not all(messages):
        return None
    return " ".join([body["error"], *messages]).strip() or None


def _problem(case: schemathesis.Case, response: requests.Response) -> str | None:
    status = response.status_code
    if status >= 500:
        return f"server error {status}: {response.text[:200]}"
    if 400 <= status < 500:
        return None if _reason(response) else f"{status} without a reason: {response.text[:200]}"
    try:
        case.validate_response(response, checks=[response_schema_conformance])
    except Exception as exc:  # schemathesis raises a group of check failures
        return f"{status} does not match the spec: {exc}"[:400]
    return None


def _fuzzer(operation, mode, session: requests.Session, tally: Counter, problems: list[str]):
    """A hypothesis test sending generated `mode` (valid / invalid) cases for one operation."""

    @settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases every run: CI is reproducible
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call(session=session, timeout=60)
        kind = f"{response.status_code // 100}xx"
        tally.update(["requests", kind, f"{mode.value} {kind}"])
        problem = _problem(case, response)
        if problem:
            problems.append(f"{problem}\n  {case.as_curl_command()}")

    return fuzz


def test_fuzzed_requests_get_a_valid_answer_or_a_4xx_with_a_reason(server, figures) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/docs.json").include(path=PATHS)
    tally: Counter[str] = Counter()
    problems: list[str] = []
    started = time.monotonic()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            for mode in (
                schemathesis.GenerationMode.POSITIVE,
                schemathesis.GenerationMode.NEGATIVE,
            ):
                _fuzzer(result.ok(), mode, session, tally, problems)()
    seconds = time.monotonic() - started
    figures(
        f"\nfuzz: {tally['requests']} requests in {seconds:.0f}s: {tally['2xx']} 2xx, "
        f"{tally['4xx']} 4xx, {tally['5xx']} 5xx ({dict(sorted(tally.items()))})"
    )
    assert not problems, "\n".join(problems[:5])
    assert tally["requests"] >= 200 and tally["5xx"] == 0
    assert tally["positive 2xx"] > 0 and tally["negative 4xx"] > 0
    # No crash: the same process still answers and scores.
    assert server.process.running
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    ok = httpx.post(f"{server.url}/predict", json={"customer": example_record()})
    assert ok.status_code == 200


def test_a_batch_over_the_limit_gets_413_naming_the_field_and_limit(server) -> None:
    records = [example_record()] * (MAX_BATCH + 1)
    response = httpx.post(f"{server.url}/predict_batch", json={"customers": records}, timeout=60)
    assert response.status_code == 413
    reason = f"customers: {MAX_BATCH + 1} items in one request; the limit is {MAX_BATCH}"
    assert response.json() == {"error": reason, "detail": [{"loc": ["customers"], "msg": reason}]}
    at_limit = httpx.post(
        f"{server.url}/predict_batch", json={"customers": records[:MAX_BATCH]}, timeout=60
    )
    assert at_limit.status_code == 200 and len(at_limit.json()["predictions"]) == MAX_BATCH
