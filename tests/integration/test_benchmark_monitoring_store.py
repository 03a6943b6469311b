"""The monitoring-store benchmark keeps working: a tiny run on a throwaway PostgreSQL server
fills every figure. Figures are printed, never judged here (`python -m
benchmarks.monitoring_store` has the full run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.benchmark_runs import run_benchmark
from tests.postgres import needs_postgres

pytestmark = [pytest.mark.benchmark, needs_postgres]

SIZES = (5_000, 20_000)
TICK_ROWS = 1_000


def test_small_run_reports_tick_export_and_retraining_read_per_size(
    tmp_path: Path, figures
) -> None:
    out = tmp_path / "monitoring.json"
    report, printed = run_benchmark(
        "benchmarks.monitoring_store",
        *("--rows", ",".join(map(str, SIZES)), "--tick-rows", str(TICK_ROWS)),
        out=out,
    )
    results = report["results"]
    assert [r["rows"] for r in results] == list(SIZES)
    for result in results:
        assert result["tick_rows"] == TICK_ROWS  # the tick counts only the newest rows
        assert result["first_tick_rows"] == result["rows"]
        assert 0 < result["export_rows"] < result["rows"]  # one day of three
        assert result["retrain_rows"] > 0
        for key in ("tick_seconds", "export_seconds", "retrain_seconds", "tick_peak_rss_mib"):
            assert result[key] > 0, key
    assert out.with_suffix(".md").read_text() in printed
    figures(printed)
