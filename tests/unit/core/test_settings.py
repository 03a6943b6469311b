"""Settings come from CHURNOPS_* variables and refuse values that would weaken the platform."""

from __future__ import annotations

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
