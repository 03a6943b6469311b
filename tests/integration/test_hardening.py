"""Hostile input at the HTTP edge: scoped bearer tokens and their rotation, non-JSON (pickle)
bodies, oversized bodies."""

from __future__ import annotations

import pickle
import secrets
import threading
import time
from pathlib import Path

import httpx
import pytest

from churnops.contract import telco_contract
from tests.conftest import start_bento, wait_ready
from tests.integration.conftest import SERVED_MODEL

pytestmark = pytest.mark.integration

TELCO = telco_contract()
example_record = TELCO.example_record

TOKEN = secrets.token_urlsafe(16)  # made per run: no secret in git


PREDICT, FEEDBACK, NEW_PREDICT = (secrets.token_urlsafe(16) for _ in range(3))


@pytest.fixture(scope="module")
def tokens_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "tokens"
    path.write_text(f"predict:{PREDICT}\nfeedback:{FEEDBACK}\n")
    return path


@pytest.fixture(scope="module")
def guarded(
    tmp_path_factory: pytest.TempPathFactory,
    mlflow_uri: str,
    served_champion: str,
    tokens_file: Path,
):
    server = start_bento(
        tmp_path_factory.mktemp("guarded"),
        mlflow_uri,
        SERVED_MODEL,
        CHURNOPS_API_TOKEN=TOKEN,
        CHURNOPS_API_TOKENS_FILE=str(tokens_file),
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
    feedback = {"labels": [{"customerID": example_record()["customerID"], "Churn": "No"}]}
    assert _post(guarded, "/feedback", json=feedback).status_code == 401
    assert _post(guarded, "/feedback", json=feedback, headers=AUTH).status_code == 200


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_a_token_reaches_only_its_scope(guarded) -> None:
    body = {"customer": example_record()}
    assert _post(guarded, json=body, headers=_bearer(PREDICT)).status_code == 200
    feedback = {"labels": [{"customerID": example_record()["customerID"], "Churn": "No"}]}
    refused = _post(guarded, "/feedback", json=feedback, headers=_bearer(PREDICT))
    assert refused.status_code == 403 and "scope" in refused.json()["error"]
    assert _post(guarded, "/feedback", json=feedback, headers=_bearer(FEEDBACK)).status_code == 200
    assert _post(guarded, json=body, headers=_bearer(FEEDBACK)).status_code == 403


def test_a_token_is_rotated_without_a_failed_request(guarded, tokens_file: Path, figures) -> None:
    """Clients keep predicting while the file gains the new token, the clients move to it, and
    the file drops the old one: no request fails, and the old token is refused at the end."""
    current = {"token": PREDICT}
    statuses: list[int] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                response = http.post(
                    f"{guarded.url}/predict",
                    json={"customer": example_record()},
                    headers=_bearer(current["token"]),
                )
                statuses.append(response.status_code)

    def accepted(token: str) -> bool:
        body = {"customer": example_record()}
        return _post(guarded, json=body, headers=_bearer(token)).status_code == 200

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        tokens_file.write_text(f"predict:{PREDICT}\npredict:{NEW_PREDICT}\nfeedback:{FEEDBACK}\n")
        _until(lambda: accepted(NEW_PREDICT), "the new token was never accepted")
        current["token"] = NEW_PREDICT
        time.sleep(1)
        tokens_file.write_text(f"predict:{NEW_PREDICT}\nfeedback:{FEEDBACK}\n")
        _until(lambda: not accepted(PREDICT), "the old token was never refused")
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    figures(f"token rotation: {len(statuses)} requests by 8 clients, statuses {set(statuses)}")
    assert len(statuses) > 50 and set(statuses) == {200}


def _until(condition, message: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.2)


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
