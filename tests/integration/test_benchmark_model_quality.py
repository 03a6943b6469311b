"""The model quality benchmark keeps working: a small run fills a row per recipe and baseline."""

from __future__ import annotations

import pytest

from churnops.model.recipes import RECIPES
from tests.integration.benchmark_runs import run_benchmark

pytestmark = [pytest.mark.integration, pytest.mark.benchmark]


def test_small_run_reports_cv_and_holdout_auc_of_every_recipe(tmp_path) -> None:
    out = tmp_path / "quality.json"
    report = run_benchmark(
        "benchmarks.model_quality", *("--rows", "600", "--folds", "3", "--budget", "2"), out=out
    ).report
    assert report["rows"] == 600 and report["folds"] == 3
    rows = {row["model"]: row for row in report["results"]}
    assert set(RECIPES) <= set(rows)
    assert {row["kind"] for row in rows.values()} >= {"recipe", "baseline"}
    for name, row in rows.items():
        for figure in ("cv_auc_mean", "holdout_auc"):
            assert 0.5 < row[figure] <= 1.0, (name, figure, row[figure])
        assert 0 <= row["cv_auc_std"] < 0.2 and 0 < row["holdout_brier"] < 0.25, name
    table = out.with_suffix(".md").read_text()
    for name in rows:
        assert f"| {name} |" in table
    assert "cores" in report["machine"]
