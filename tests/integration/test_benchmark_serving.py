"""The serving benchmark at smoke size: real servers, real wrk, every cell filled and error-free.

Figures are printed in the run's "figures" section, never judged here: speed is a benchmark's
business (README "Performance" has the full table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.benchmark_runs import run_benchmark
from tests.system import ensure_program

pytestmark = [pytest.mark.integration, pytest.mark.benchmark]


def test_serving_benchmark_smoke_fills_every_cell_without_errors(tmp_path: Path, figures) -> None:
    ensure_program("wrk", ("wrk",))
    out = tmp_path / "serving.json"
    report = run_benchmark("benchmarks.serving", "--smoke", out=out, timeout=600).report
    cells = {(c["server"], c["rows_per_request"], c["concurrency"]): c for c in report["cells"]}
    servers = (
        "bento",
        "bento (logging off)",
        "bento (shadow)",
        "mlflow models serve",
        "constant bento (framework ceiling)",
        "uvicorn + starlette (HTTP ceiling)",
    )
    expected = {(s, rows, c) for s in servers for rows in (1, 10) for c in (1, 8)}
    assert expected <= set(cells)
    for key in expected:
        cell = cells[key]
        assert cell["requests_per_s"] > 0, key
        assert cell["errors"] == 0, key
        assert cell["p99_ms"] >= cell["p50_ms"] > 0, key
        assert cell["rss_mib"] > 10, key  # the bare HTTP ceiling is a small process
        assert 10 < cell["worker_rss_mib"] <= cell["rss_mib"], key
    assert {c["rows_per_request"] for c in report["cells"] if "in-process" in c["server"]} == {
        1,
        10,
    }
    assert set(report["cold_start_s"]) == set(servers)
    (limit,) = [c for c in report["cells"] if c["server"].startswith("estimator only")]
    assert limit["rows_per_s"] > 0 and limit["rows_per_request"] == 10_000
    assert all(seconds > 0 for seconds in report["cold_start_s"].values())
    assert report["targets"]["zero errors in every cell"]["met"]
    soaked = report["soak"]  # the worker's memory followed over more requests
    assert soaked["requests"] >= 2_000 and soaked["errors"] == 0
    assert 10 < soaked["worker_rss_mib_end"] <= soaked["worker_rss_mib_peak"]
    (memory,) = [v for k, v in report["targets"].items() if k.startswith("RSS of one worker")]
    assert memory["soak_requests"] == soaked["requests"]
    assert memory["worker_mib"] >= round(soaked["worker_rss_mib_peak"])
    (shadow,) = [v for k, v in report["targets"].items() if k.startswith("shadow mode")]
    assert shadow["worst_cost"] < 1.0
    (log,) = [v for k, v in report["targets"].items() if k.startswith("durable prediction log")]
    assert log["fdatasync_us"] > 0 and 0 < log["fdatasync_share_of_a_lone_request"] < 1
    assert out.with_suffix(".md").read_text().startswith("Machine: ")
    figures(out.with_suffix(".md").read_text())
