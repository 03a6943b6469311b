"""`churn_scores`: the whole customer base scored by `@champion`, one Parquet file per scoring
date, with ranks and reason codes; lineage (version, input fingerprint) goes to MLflow. The
scoring itself is `churnops.model.batch`; this wires it to Dagster and the registry."""

import datetime as dt

import dagster as dg
import pandas as pd
from matplotlib import pyplot as plt

from churnops.contract import Contract, ContractError
from churnops.data.synthetic import generate_customers, is_demo_contract
from churnops.model.batch import (
    CHUNK_ROWS,
    ScoringModel,
    ScoringSummary,
    frames_fingerprint,
    readable_columns,
    score_chunks,
    score_file,
)
from orchestration.metadata import figure_markdown, platform_asset
from orchestration.plots import score_histogram_figure
from orchestration.resources import (
    CustomerSource,
    DataContractResource,
    ModelRegistryResource,
    ScoringTarget,
)
from registry.interface import SCORING_EXPERIMENT, RegistryError
from registry.scoring import scoring_model

SCORING = "scoring"
# One partition per scoring date; today's exists from the start of the day (end_offset=1).
SCORING_DATES = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_offset=1)
TOP_TABLE_ROWS = 10


def synthetic_base(rows: int, seed: int, partition: str) -> pd.DataFrame:
    """The demo's customer base on a scoring date: the generator's population, new customers
    each date (the seed moves with the date); scoring ignores its labels."""
    day = dt.date.fromisoformat(partition).toordinal()
    return generate_customers(rows, seed=seed + day)


def score_source(
    target: ScoringTarget,
    source: CustomerSource,
    contract: Contract,
    model: ScoringModel,
    partition: str,
    log,
) -> ScoringSummary:
    """Score the configured base into the partition's file, logging progress per chunk."""
    output = target.location(partition)

    def progress(rows: int, _bytes: int) -> None:
        log(f"scored {rows:,} customers")

    path = target.path or source.path
    if path:
        return score_file(
            path, output, model, contract, explain=target.explain, on_progress=progress
        )
    if not is_demo_contract(contract):
        raise ContractError(
            f"nothing to score: CHURNOPS_SCORING_PATH and CHURNOPS_DATA_PATH are unset, and the "
            f"synthetic generator only makes the Telco demo, not {contract.dataset!r}"
        )
    base = synthetic_base(source.synthetic_rows, source.seed, partition)
    chunks = [base.iloc[i : i + CHUNK_ROWS] for i in range(0, len(base), CHUNK_ROWS)]
    return score_chunks(
        chunks,
        f"synthetic({len(base)}, {partition})",
        output,
        model,
        contract,
        input_fingerprint=frames_fingerprint(chunks),
        explain=target.explain,
        on_progress=progress,
    )


def top_table(summary: ScoringSummary, rows: int = TOP_TABLE_ROWS) -> str:
    shown = summary.top.head(rows).copy()
    shown = shown.loc[:, readable_columns(shown)]
    if "churn_probability" in shown:
        shown["churn_probability"] = shown["churn_probability"].round(4)
    if "log_odds" in shown:
        shown["log_odds"] = shown["log_odds"].round(3)
    return shown.to_markdown(index=False)


@platform_asset(
    SCORING,
    "sklearn",
    "mlflow",
    "parquet",
    external=True,
    partitions_def=SCORING_DATES,
    deps=[dg.AssetKey("champion_version")],
)
def churn_scores(
    context: dg.AssetExecutionContext,
    scoring_target: ScoringTarget,
    customer_source: CustomerSource,
    model_registry: ModelRegistryResource,
    contract: DataContractResource,
) -> dg.MaterializeResult:
    """Every customer of the base scored by `@champion` (probability, decision at the served
    threshold, rank, top reason codes) in a Parquet file per scoring date."""
    data_contract = contract.load()
    registry = model_registry.open()
    partition = context.partition_key
    try:
        model = scoring_model(registry, data_contract, explain=scoring_target.explain)
    except RegistryError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from exc
    context.log.info(
        f"scoring with {registry.model_name} v{model.version} (threshold {model.threshold:.4f})"
    )
    try:
        summary = score_source(
            scoring_target, customer_source, data_contract, model, partition, context.log.info
        )
    except ContractError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from exc
    histogram = score_histogram_figure(
        summary.histogram, summary.threshold, summary.predicted_churners
    )
    run = registry.log_monitoring_run(
        run_name=f"scores-{partition}-v{model.version}",
        metrics={
            "rows": summary.rows,
            "predicted_churners": summary.predicted_churners,
            "threshold": summary.threshold,
            "rows_per_second": summary.rows_per_second,
        },
        figures={"scores/histogram.png": histogram},
        tags={
            "model.name": registry.model_name,
            "model.version": model.version,
            "input.fingerprint": summary.input_fingerprint,
            "output": summary.output,
            "scoring.date": partition,
            "dagster.run_id": context.run.run_id,
            "contract.fingerprint": data_contract.fingerprint,
        },
        experiment=SCORING_EXPERIMENT,
    )
    histogram_md = figure_markdown(histogram, "score histogram")
    plt.close(histogram)
    return dg.MaterializeResult(
        metadata={
            "rows": summary.rows,
            "model_version": model.version,
            "threshold": round(summary.threshold, 4),
            "predicted_churners": summary.predicted_churners,
            "output": dg.MetadataValue.path(summary.output),
            "input_fingerprint": summary.input_fingerprint,
            "rows_per_second": round(summary.rows_per_second),
            "score_histogram": histogram_md,
            "top_customers": dg.MetadataValue.md(top_table(summary)),
            "mlflow_run": dg.MetadataValue.url(registry.run_url(run)),
        }
    )
