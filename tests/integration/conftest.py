"""Fixtures shared by the integration modules."""

from __future__ import annotations

import pytest

from tests.integration.pipeline import materialize_pipeline

# The model the serving modules serve and never change (no alias moves, no new versions): one
# training per test session (each xdist worker) instead of one per module.
SERVED_MODEL = "churn-served"


@pytest.fixture(scope="session")
def served_champion(mlflow_uri: str) -> str:
    """The champion version of `SERVED_MODEL`, trained on 5,000 synthetic rows."""
    result = materialize_pipeline(mlflow_uri, SERVED_MODEL, synthetic_rows=5_000)
    return result.output_for_node("champion_version")
