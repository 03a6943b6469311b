"""Helpers of the benchmarks and the dataset logging they made fast."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from mlflow.types.utils import _infer_schema

from benchmarks.common import RssTimeline
from benchmarks.pipeline import step_spans
from benchmarks.serving import Cell
from benchmarks.serving import parse_args as serving_args
from benchmarks.serving import verdicts as serving_verdicts
from registry.datasets import SampledSchemaDataset, schema_sample

pytestmark = pytest.mark.unit


def _record(step: str, kind: str, at: float) -> SimpleNamespace:
    return SimpleNamespace(
        step_key=step, timestamp=at, dagster_event=SimpleNamespace(event_type_value=kind)
    )


def test_step_spans_take_the_successful_attempt_in_start_order() -> None:
    records = [
        _record("train", "STEP_START", 5.0),
        _record("ingest", "STEP_START", 1.0),
        _record("ingest", "STEP_SUCCESS", 2.0),
        _record("train", "STEP_UP_FOR_RETRY", 6.0),
        _record("train", "STEP_START", 8.0),
        _record("train", "STEP_SUCCESS", 9.5),
        SimpleNamespace(step_key=None, timestamp=10.0, dagster_event=None),
    ]
    assert step_spans(records) == {"ingest": (1.0, 2.0), "train": (8.0, 9.5)}


def test_rss_timeline_attributes_peaks_to_time_spans() -> None:
    timeline = RssTimeline()
    timeline.samples = [(1.0, 100), (2.0, 300), (3.0, 200), (4.0, 50)]
    assert timeline.peak_between(1.5, 3.5) == 300
    assert timeline.peak_between(3.0, 4.0) == 200
    assert timeline.peak_between(3.2, 3.4) == 200  # shorter than a sampling interval
    assert timeline.peak_between(0.0, 0.5) == 0


def test_schema_sample_keeps_each_columns_first_missing_value() -> None:
    frame = pd.DataFrame({"a": np.arange(50.0), "b": np.arange(50.0)})
    frame.loc[30, "a"] = np.nan
    frame.loc[45, "b"] = np.nan
    sample = schema_sample(frame, rows=10)
    assert list(sample.index) == [*range(10), 30, 45]


def test_sampled_schema_matches_mlflows_full_inference() -> None:
    """Nulls only past the sampled head still make the column optional, as MLflow would."""
    rows = 30_000
    frame = pd.DataFrame(
        {
            "id": [f"c{i}" for i in range(rows)],
            "plan": pd.Categorical(["a", "b"] * (rows // 2)),
            "months": np.arange(rows),
            "charges": np.where(np.arange(rows) == rows - 1, np.nan, 1.5),
        }
    )
    dataset = SampledSchemaDataset(frame, source=None, name="customers", digest="d")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert dataset.schema == _infer_schema(frame)
    assert not dataset.schema.input_dict()["charges"].required


def test_the_serving_soak_is_a_million_requests_in_a_full_run_and_short_in_the_smoke() -> None:
    full, smoke = serving_args([]), serving_args(["--smoke"])
    assert (full.soak_requests, full.soak_chunk) == (1_000_000, 30.0)
    assert (smoke.soak_requests, smoke.soak_chunk) == (2_000, 1.0)
    assert serving_args(["--smoke", "--soak-requests", "0"]).soak_requests == 0


def test_the_memory_verdict_counts_the_soak_and_its_errors() -> None:
    cell = Cell("bento", 1, 32, 100.0, 100.0, 1.0, 2.0, 0, 500.0, 350.0)
    soaked = {"requests": 5, "errors": 1, "worker_rss_mib_peak": 401.0, "worker_rss_mib_end": 390}
    targets = serving_verdicts([cell], {}, None, soaked)
    (memory,) = [v for k, v in targets.items() if k.startswith("RSS of one worker")]
    assert memory["worker_mib"] == 401 and not memory["met"]
    assert targets["zero errors in every cell"] == {"errors": 1, "met": False}
