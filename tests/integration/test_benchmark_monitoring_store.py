"""The monitoring-store benchmark keeps working: a tiny run on a throwaway PostgreSQL server
grows one store size by size, spread evenly over the days at every size, and fills every figure
(each phase's peak RSS from its own process). Figures are printed, never judged here (`python -m
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
    assert [r["load_rows"] for r in results] == [SIZES[0], SIZES[1] - SIZES[0]]  # grown, not
    # reloaded; each size's new rows spread over the whole span, so the exported day holds the
    # same share of the store at every size (to within a row per size loaded)
    shares = [r["export_rows"] / r["rows"] for r in results]
    assert abs(shares[0] - shares[1]) < 0.01, shares
    for result in results:
        # the tick counts only the newest rows (to within one row per size loaded)
        assert abs(result["tick_rows"] - TICK_ROWS) <= len(SIZES), result["tick_rows"]
        assert result["first_tick_rows"] == result["rows"]
        assert 0 < result["export_rows"] < result["rows"]  # one day of three
        assert result["retrain_rows"] > 0
        for key in ("tick_seconds", "export_seconds", "retrain_seconds", "tick_peak_rss_mib"):
            assert result[key] > 0, key
        for name in ("tick", "first_tick", "export", "retrain"):
            # a fresh process per phase: its peak is at least what it held before the phase
            # (both in MiB: ru_maxrss is KiB on Linux, RSS bytes; the kernel's two counts of
            # resident pages may differ by a few pages)
            base, peak = result[f"{name}_base_rss_mib"], result[f"{name}_peak_rss_mib"]
            assert 0 < base < peak + 1 < 2048, (name, base, peak)
    assert out.with_suffix(".md").read_text() in printed
    figures(printed)
