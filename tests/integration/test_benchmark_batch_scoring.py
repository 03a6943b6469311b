"""The batch scoring benchmark keeps working: a tiny run fills every row of both tables.

Figures are printed in the run's "figures" section, never judged here: speed is a benchmark's
business (`python -m benchmarks.batch_scoring` has the full run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.batch_scoring import LIMIT, LIMIT_ONE_THREAD, PLAIN, REASONS, RECIPES
from tests.integration.benchmark_runs import run_benchmark

pytestmark = pytest.mark.benchmark

ROWS = 20_000


def test_small_run_reports_limit_scoring_and_reasons_of_both_recipes(
    tmp_path: Path, figures
) -> None:
    out = tmp_path / "batch.json"
    report, printed = run_benchmark(
        "benchmarks.batch_scoring",
        *("--rows", str(ROWS), "--repeat", "1", "--passes", "1", "--train-rows", "3000"),
        out=out,
    )
    measured = {(f["recipe"], f["measurement"]): f for f in report["figures"]}
    expected = {(r, m) for r in RECIPES for m in (LIMIT, LIMIT_ONE_THREAD, PLAIN, REASONS)}
    assert set(measured) == expected
    for key, figure in measured.items():
        assert figure["rows"] == ROWS, key
        assert figure["seconds"] > 0 and figure["rows_per_second"] > 0, key
    for recipe in RECIPES:
        for scored in (PLAIN, REASONS):
            assert measured[(recipe, scored)]["peak_rss_mib"] > 50, (recipe, scored)
            assert measured[(recipe, scored)]["exact"] is True, (recipe, scored)
        result = report["results"][recipe]
        assert result["share_of_limit"] > 0 and result["share_of_best_limit"] > 0, recipe
        assert result["reasons_rows_per_second"] > 0 and result["peak_rss_mib"] > 50, recipe
    table = out.with_suffix(".md").read_text()
    assert table == printed
    for recipe in RECIPES:
        assert table.count(f"| {recipe} |") == 5, recipe  # the worse-run row and four measures
    assert "Targets (the worse run):" in table and "cores" in report["machine"]
    figures(table)
