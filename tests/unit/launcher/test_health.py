"""How `churnops status` words the Bento service's own report."""

from __future__ import annotations

import httpx
import pytest

from launcher.health import _serving_detail

pytestmark = pytest.mark.unit


def _response(body: dict) -> httpx.Response:
    return httpx.Response(200, json=body)


def test_a_refused_champion_is_named_with_its_reason() -> None:
    ok, text = _serving_detail(
        _response(
            {
                "ready": True,
                "model_version": "1",
                "degraded": True,
                "refused_version": "2",
                "refused_reason": "trained on contract gym (fingerprint ab12)",
            }
        )
    )
    assert ok
    assert (
        text == "serving version 1 (refused version 2: trained on contract gym (fingerprint ab12))"
    )


def test_a_degraded_service_shows_its_last_error() -> None:
    ok, text = _serving_detail(
        _response({"ready": True, "model_version": "3", "degraded": True, "last_error": "timeout"})
    )
    assert (ok, text) == (True, "serving version 3 (degraded: timeout)")


def test_no_model_yet_is_not_ready() -> None:
    ok, text = _serving_detail(_response({"ready": False, "last_error": None}))
    assert not ok and "waiting for @champion" in text
