"""Batch scoring against a real MLflow server: the `churn_scores` asset on 50k customers, the
`churnops score` command, and reasons and the profit threshold on a real Bento server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import httpx
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from churnops.contract import telco_contract
from churnops.data.cleaning import customers_to_score
from churnops.data.synthetic import generate_customers
from churnops.model.batch import read_metadata
from churnops.model.reasons import top_reasons
from churnops.model.scoring import features
from churnops.settings import Settings
from launcher.stack import REPO_ROOT
from orchestration.assets.scoring import synthetic_base
from orchestration.definitions import build_resources, defs
from registry.interface import (
    DECISION_BASIS_TAG,
    DECISION_THRESHOLD_TAG,
    SCORING_EXPERIMENT,
    served_decision,
)
from registry.mlflow_registry import MlflowModelRegistry
from registry.scoring import scoring_model
from tests.conftest import start_bento, wait_ready
from tests.integration.pipeline import materialization_metadata, materialize_pipeline

pytestmark = pytest.mark.integration

MODEL = "churn-batch"
TELCO = telco_contract()
DATE = "2026-11-23"
ROWS = 50_000
# A campaign where a contact costs little next to a saved customer: the profit-maximising
# threshold sits well below 0.5.
CAMPAIGN = {
    "campaign_contact_cost": 5.0,
    "campaign_retained_value": 200.0,
    "campaign_success_rate": 0.3,
}


def _registry(mlflow_uri: str) -> MlflowModelRegistry:
    return MlflowModelRegistry(mlflow_uri, MODEL, "churn-training")


@pytest.fixture(scope="module")
def champion(mlflow_uri: str) -> str:
    result = materialize_pipeline(mlflow_uri, MODEL, synthetic_rows=ROWS, **CAMPAIGN)
    assert result.success
    return result.output_for_node("champion_version")


@pytest.fixture(scope="module")
def scored(mlflow_uri: str, champion: str, tmp_path_factory: pytest.TempPathFactory):
    """`churn_scores` materialized for one scoring date, as the UI's Materialize does."""
    settings = Settings(
        mlflow_tracking_uri=mlflow_uri,
        model_name=MODEL,
        synthetic_rows=ROWS,
        prediction_store_url="sqlite://",
        scoring_output=str(tmp_path_factory.mktemp("scores")),
        **CAMPAIGN,
    )
    result = dg.materialize(
        defs.assets,
        selection=dg.AssetSelection.groups("scoring"),
        resources=build_resources(settings),
        partition_key=DATE,
    )
    assert result.success
    path = Path(settings.scores_location) / f"date={DATE}" / "scores.parquet"
    return result, path


def test_the_champion_serves_the_profit_maximising_threshold(mlflow_uri, champion) -> None:
    tags = _registry(mlflow_uri).version(champion).tags
    threshold, basis = served_decision(tags)
    assert tags[DECISION_THRESHOLD_TAG] == repr(threshold)
    assert 0.0 < threshold < 0.5, "cheap contacts pay off below 0.5"
    assert "maximum expected profit" in tags[DECISION_BASIS_TAG] and "contact 5" in basis


def test_churn_scores_writes_every_customer_ranked_with_reasons(
    scored, mlflow_uri: str, champion: str, figures
) -> None:
    result, path = scored
    frame = pd.read_parquet(path)
    assert len(frame) == ROWS
    assert sorted(frame["rank"]) == list(range(1, ROWS + 1))
    by_rank = frame.sort_values("rank")
    assert by_rank["churn_probability"].is_monotonic_decreasing
    assert set(frame["model_version"]) == {champion}
    threshold, _ = served_decision(_registry(mlflow_uri).version(champion).tags)
    expected = np.where(frame["churn_probability"] >= threshold, "Yes", "No")
    assert (frame["churn"] == expected).all()
    facts = read_metadata(str(path))
    assert facts["model_version"] == champion and facts["threshold"] == threshold
    metadata = materialization_metadata(result, "churn_scores")
    assert metadata["rows"].value == ROWS
    assert metadata["model_version"].value == champion
    assert "data:image/png;base64," in metadata["score_histogram"].value
    assert "rank" in metadata["top_customers"].value
    figures(
        f"churn_scores: {ROWS:,} rows at {metadata['rows_per_second'].value:,} rows/s "
        "(in-process, with reasons)"
    )


def test_the_reasons_in_the_file_reproduce_the_models_margin(
    scored, mlflow_uri: str, champion: str
) -> None:
    _, path = scored
    frame = pd.read_parquet(path)
    base = customers_to_score(synthetic_base(ROWS, 42, DATE), "base", TELCO)
    assert (base[TELCO.id_name].to_numpy() == frame[TELCO.id_name].to_numpy()).all()
    model = scoring_model(_registry(mlflow_uri), TELCO, explain=True)
    sample = np.random.default_rng(0).choice(ROWS, 2_000, replace=False)
    rows = base.iloc[sample].reset_index(drop=True)
    explanation = model.explainer.explain(features(rows, TELCO))
    # Contributions plus the base value are the model's own margin, and the file holds it.
    own_margin = model.explainer.margin(features(rows, TELCO))
    np.testing.assert_allclose(explanation.margin, own_margin, atol=1e-9)
    np.testing.assert_allclose(frame["log_odds"].to_numpy()[sample], own_margin, atol=1e-9)
    for row, reasons in enumerate(top_reasons(explanation, rows, 3)):
        written = frame.iloc[sample[row]]
        assert [written[f"reason_{i + 1}_feature"] for i in range(len(reasons))] == [
            reason.feature for reason in reasons
        ]
        if reasons:
            assert written["reason_1"] == reasons[0].text
    assert frame["reason_1"].notna().mean() > 0.95


def test_scoring_lineage_is_a_run_in_mlflow(scored, mlflow_uri: str, champion: str) -> None:
    _, path = scored
    client = MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name(SCORING_EXPERIMENT)
    runs = client.search_runs(
        [experiment.experiment_id], f"tags.`model.version` = '{champion}'", max_results=5
    )
    run = next(r for r in runs if r.data.tags["scoring.date"] == DATE)
    assert run.data.tags["input.fingerprint"] == read_metadata(str(path))["input_fingerprint"]
    assert run.data.tags["output"] == str(path)
    assert run.data.metrics["rows"] == ROWS
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "scores")]
    assert artifacts == ["scores/histogram.png"]


def _cli(args: list[str], mlflow_uri: str, home: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "CHURNOPS_MLFLOW_TRACKING_URI": mlflow_uri,
        "CHURNOPS_MODEL_NAME": MODEL,
        "CHURNOPS_HOME": str(home),
    }
    return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "launcher.cli", "score", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _customers_csv(path: Path, rows: int) -> Path:
    generate_customers(rows, seed=11).drop(columns=["Churn"]).to_csv(path, index=False)
    return path


def test_cli_scores_a_csv_and_writes_the_top_n_with_reasons(
    tmp_path: Path, mlflow_uri: str, champion: str
) -> None:
    csv = _customers_csv(tmp_path / "customers.csv", 3_000)
    out = tmp_path / "top.parquet"
    done = _cli(
        ["--data", str(csv), "--out", str(out), "--explain", "--top", "50"], mlflow_uri, tmp_path
    )
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())
    assert f"wrote {out}" in said and "3,000 customers scored" in said
    top = pd.read_parquet(out)
    assert list(top["rank"]) == list(range(1, 51))
    assert top["churn_probability"].is_monotonic_decreasing
    assert top["reason_1"].notna().all()
    everyone = tmp_path / "all.parquet"
    assert _cli(["--data", str(csv), "--out", str(everyone)], mlflow_uri, tmp_path).returncode == 0
    ranked = pd.read_parquet(everyone).sort_values("rank").head(50)
    assert list(ranked["customerID"]) == list(top["customerID"])


def test_cli_bad_row_names_file_line_and_column_and_writes_nothing(
    tmp_path: Path, mlflow_uri: str, champion: str
) -> None:
    csv = _customers_csv(tmp_path / "customers.csv", 2_500)
    lines = csv.read_text().splitlines()
    header = lines[0].split(",")
    fields = lines[2101].split(",")
    fields[header.index("tenure")] = "twelve"  # file line 2102: past the first chunk's start
    lines[2101] = ",".join(fields)
    csv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out" / "scores.parquet"
    done = _cli(["--data", str(csv), "--out", str(out)], mlflow_uri, tmp_path)
    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    assert str(csv) in message and "'tenure'" in message and "line 2102" in message
    assert not out.exists()
    leftovers = list(out.parent.iterdir()) if out.parent.exists() else []
    assert leftovers == [], "no partial file is left behind"


def test_cli_without_a_champion_says_so(tmp_path: Path, mlflow_uri: str) -> None:
    csv = _customers_csv(tmp_path / "customers.csv", 10)
    env_model = {"CHURNOPS_MODEL_NAME": "churn-batch-nobody"}
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "launcher.cli", "score", "--data", str(csv), "--out", "x.pq"],
        env={**os.environ, "CHURNOPS_MLFLOW_TRACKING_URI": mlflow_uri, **env_model},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "no @champion yet" in " ".join(done.stderr.split())


@pytest.fixture(scope="module")
def bento(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str, champion: str):
    server = start_bento(tmp_path_factory.mktemp("bento-batch"), mlflow_uri, MODEL)
    wait_ready(server)
    yield server
    server.stop()


def test_the_api_explains_on_request_and_says_which_threshold(
    bento, mlflow_uri: str, champion: str
) -> None:
    status = httpx.get(f"{bento.url}/model").json()
    threshold, basis = served_decision(_registry(mlflow_uri).version(champion).tags)
    assert status["decision"] == {"threshold": threshold, "basis": basis}
    assert status["reasons"]["method"] in ("linear", "tree_path")
    record = {**TELCO.example_record(), "Contract": "Month-to-month", "tenure": 1}
    plain = httpx.post(f"{bento.url}/predict", json={"customer": record}).json()
    assert plain["reasons"] is None
    explained = httpx.post(f"{bento.url}/predict", json={"customer": record, "explain": True})
    assert explained.status_code == 200
    body = explained.json()
    assert body["churn_probability"] == pytest.approx(plain["churn_probability"], abs=1e-12)
    assert body["churn"] == ("Yes" if body["churn_probability"] >= threshold else "No")
    reasons = body["reasons"]
    assert 1 <= len(reasons) <= 3
    contributions = [r["log_odds"] for r in reasons]
    assert contributions == sorted(contributions, reverse=True)
    assert all(value > 0 for value in contributions)
    assert "Contract" in {r["feature"] for r in reasons}
    batch = httpx.post(
        f"{bento.url}/predict_batch",
        json={"customers": [record, TELCO.example_record()], "explain": True},
    ).json()
    assert all(p["reasons"] is not None for p in batch["predictions"])
    bad = httpx.post(f"{bento.url}/predict", json={"customer": record, "explain": "maybe"})
    assert bad.status_code == 400 and "explain" in bad.text
    assert json.loads(bad.text)


def test_settings_reject_a_half_set_campaign() -> None:
    with pytest.raises(ValueError, match="campaign_retained_value"):
        Settings(campaign_contact_cost=5.0)
