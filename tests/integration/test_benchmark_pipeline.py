"""The pipeline benchmark keeps working: its smoke size runs end to end and reports figures."""

from __future__ import annotations

import pytest

from tests.integration.benchmark_runs import run_benchmark

pytestmark = [pytest.mark.integration, pytest.mark.benchmark]

TRAINING_STEPS = {
    "raw_customers",
    "clean_customers",
    "customer_split",
    "churn_candidate",
    "candidate_evaluation",
    "challenger_version",
    "champion_version",
}


def test_smoke_benchmark_reports_every_step_and_the_monitor(tmp_path) -> None:
    out = tmp_path / "p.json"
    report = run_benchmark("benchmarks.pipeline", "--smoke", out=out).report
    (size,) = report["pipeline"]
    steps = {step["step"]: step for step in size["steps"]}
    assert set(steps) >= TRAINING_STEPS
    assert any(name.startswith("clean_customers_") for name in steps)  # the blocking checks
    for name, step in steps.items():
        assert step["seconds"] > 0 and step["rows_per_second"] > 0, name
        assert step["peak_rss_mib"] > 50, name
    assert size["rows"] == 5_000
    assert size["end_to_end_seconds"] > steps["churn_candidate"]["seconds"]
    assert size["peak_rss_mib"] > 50 and size["roc_auc"] > 0.7
    monitor = report["monitor"]
    assert monitor["rows"] == 20_000 and monitor["labelled_rows"] > 0
    for figure in ("read_seconds", "statistics_seconds", "total_seconds", "peak_rss_mib"):
        assert monitor[figure] > 0, figure
    assert "| churn_candidate |" in out.with_suffix(".md").read_text()
    assert "cores" in report["machine"]
