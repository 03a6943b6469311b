"""The README's run command: `churnops up` from nothing to a served champion, then Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from churnops.contract import telco_contract
from tests.e2e.stack import start_stack

pytestmark = pytest.mark.e2e

TELCO = telco_contract()
example_record = TELCO.example_record


def test_up_serves_the_champion_and_stops_cleanly(tmp_path: Path) -> None:
    stack = start_stack(tmp_path, synthetic_rows="20000", alias_poll_seconds="2")
    try:
        prediction = httpx.post(f"{stack.bento}/predict", json={"customer": example_record()})
        alias = httpx.get(
            f"{stack.mlflow}/api/2.0/mlflow/registered-models/alias",
            params={"name": "churn", "alias": "champion"},
        )
        assert 0.0 <= prediction.json()["churn_probability"] <= 1.0
        assert prediction.json()["model_version"] == alias.json()["model_version"]["version"]
        assert httpx.get(f"{stack.dagster}/server_info").status_code == 200
        assert httpx.get(f"{stack.mlflow}/health").status_code == 200
    finally:
        code = stack.stop()
    assert code == 0, stack.output()[-3000:]
    for url in (stack.bento, stack.mlflow, stack.dagster):
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, timeout=2)
