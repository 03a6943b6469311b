"""Settings come from CHURNOPS_* variables and refuse values that would weaken the platform."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from churnops.monitoring.drift import DriftThresholds
from churnops.settings import Settings

pytestmark = pytest.mark.unit


def test_blank_api_token_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNOPS_API_TOKEN", "  ")
    with pytest.raises(ValidationError, match="CHURNOPS_API_TOKEN is set but blank"):
        Settings()


def test_token_and_ports_are_read_from_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNOPS_API_TOKEN", "s3cret")
    monkeypatch.setenv("CHURNOPS_BENTO_PORT", "8123")
    settings = Settings()
    assert settings.api_token.get_secret_value() == "s3cret"
    assert settings.bento_url == "http://127.0.0.1:8123"
    assert "s3cret" not in repr(settings)


def test_drift_thresholds_are_read_from_prefixed_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHURNOPS_DRIFT_SCORE_PSI", "0.35")
    monkeypatch.setenv("CHURNOPS_DRIFT_MIN_LABELS", "50")
    monkeypatch.setenv("CHURNOPS_MONITOR_MIN_ROWS", "250")
    thresholds = DriftThresholds.from_settings(Settings())
    assert (thresholds.score_psi, thresholds.min_labels, thresholds.min_rows) == (0.35, 50, 250)


def test_contract_and_gate_slices_default_to_the_contracts_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CHURNOPS_CONTRACT", raising=False)
    monkeypatch.delenv("CHURNOPS_GATE_SLICES", raising=False)
    assert (Settings().contract, Settings().gate_slices) == (None, None)
    monkeypatch.setenv("CHURNOPS_CONTRACT", "/data/shop.yaml")
    monkeypatch.setenv("CHURNOPS_GATE_SLICES", '["plan", "seats:5,20"]')
    settings = Settings()
    assert settings.contract == Path("/data/shop.yaml")
    assert settings.gate_slices == ["plan", "seats:5,20"]
    monkeypatch.setenv("CHURNOPS_GATE_SLICES", '["seats:20,5"]')
    with pytest.raises(ValidationError, match="edges must be strictly increasing"):
        Settings()


def test_a_blank_contract_variable_means_the_default_contract(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHURNOPS_CONTRACT", "  ")
    assert Settings().contract is None
