"""Hostile input at the HTTP edge: bearer token, non-JSON (pickle) bodies, oversized bodies."""

from __future__ import annotations

import pickle
import secrets

import httpx
import pytest

from churnops.contract import telco_contract
from tests.conftest import start_bento, wait_ready
from tests.integration.pipeline import materialize_pipeline

pytestmark = pytest.mark.integration

TELCO = telco_contract()
example_record = TELCO.example_record

MODEL = "churn-hardening"
TOKEN = secrets.token_urlsafe(16)  # made per run: no secret in git


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str):
    materialize_pipeline(mlflow_uri, MODEL, synthetic_rows=5_000)
    server = start_bento(
        tmp_path_factory.mktemp("guarded"),
        mlflow_uri,
        MODEL,
        CHURNOPS_API_TOKEN=TOKEN,
        CHURNOPS_MAX_REQUEST_BYTES="100000",
    )
    wait_ready(server)
    yield server
    server.stop()


def _post(server, path: str = "/predict", **kwargs) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", **kwargs)


AUTH = {"authorization": f"Bearer {TOKEN}"}


def test_predict_and_feedback_need_the_bearer_token(guarded) -> None:
    body = {"customer": example_record()}
    assert _post(guarded, json=body).status_code == 401
    wrong = _post(guarded, json=body, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert _post(guarded, json=body, headers=AUTH).status_code == 200
    feedback = {"labels": [{"customerID": "x", "Churn": "No"}]}
    assert _post(guarded, "/feedback", json=feedback).status_code == 401
    assert _post(guarded, "/feedback", json=feedback, headers=AUTH).status_code == 200


def test_probes_and_docs_stay_open(guarded) -> None:
    for path in ("/healthz", "/readyz", "/docs", "/docs.json", "/model"):
        assert httpx.get(f"{guarded.url}{path}").status_code == 200, path


@pytest.mark.parametrize(
    "content_type", ["application/vnd.bentoml+pickle", "application/octet-stream", "text/plain"]
)
def test_non_json_bodies_are_refused_with_415(guarded, content_type: str) -> None:
    payload = pickle.dumps({"customer": example_record()})
    response = _post(guarded, content=payload, headers={**AUTH, "content-type": content_type})
    assert response.status_code == 415
    assert response.json()["detail"][0]["loc"] == ["header", "content-type"]


def test_oversized_bodies_are_refused_with_413(guarded) -> None:
    records = [example_record()] * 1000  # about 600 kB of JSON, limit is 100 kB
    response = _post(guarded, "/predict_batch", json={"customers": records}, headers=AUTH)
    assert response.status_code == 413
    assert "larger than 100000 bytes" in response.json()["error"]


def test_oversized_chunked_bodies_are_refused_with_413(guarded) -> None:
    def chunks():
        yield b'{"customers": ['
        for _ in range(400):
            yield httpx.Request("POST", "/", json=example_record()).content + b","
        yield b"{}]}"

    response = _post(
        guarded,
        "/predict_batch",
        content=chunks(),
        headers={**AUTH, "content-type": "application/json"},
    )
    assert response.status_code == 413
