"""The drift report: a window of served predictions compared with the champion's reference."""

import time

import dagster as dg
import matplotlib.pyplot as plt
from pydantic import Field

from churnops.monitoring.binned import (
    binned_reference,
    binned_report,
    counted_rows,
    quality_from_bins,
)
from churnops.monitoring.drift import DriftReport, decide_retrain
from churnops.monitoring.window_counts import count_window, quality_bins
from orchestration.metadata import figure_markdown, platform_asset
from orchestration.plots import drift_figure
from orchestration.resources import (
    DataContractResource,
    ModelRegistryResource,
    MonitorPolicy,
    PredictionStore,
)
from registry.interface import contract_mismatch

MONITORING = "monitoring"


class DriftWindowConfig(dg.Config):
    """The window to report on, as Unix timestamps; the sensor fills both in."""

    since_ts: float = Field(0.0, description="Predictions strictly after this time.")
    until_ts: float = Field(0.0, description="Up to this time; 0 means now.")


def _report_metrics(report: DriftReport) -> dict[str, float]:
    return {
        "rows": report.rows,
        "drift_share": report.drift_share,
        "score_psi": report.score.psi,
        **{f"psi.{f.feature}": f.psi for f in report.features},
        **{
            f"live_{name}.v{version}": value
            for version, quality in report.quality.items()
            for name, value in quality.items()
        },
    }


@platform_asset(MONITORING, "mlflow", "sql", external=True)
def drift_report(
    context: dg.AssetExecutionContext,
    config: DriftWindowConfig,
    prediction_store: PredictionStore,
    model_registry: ModelRegistryResource,
    monitor_policy: MonitorPolicy,
    contract: DataContractResource,
) -> dg.MaterializeResult:
    """Per-feature PSI + KS/chi-square (the contract's features), score drift and live
    AUC/Brier by model version, from the window's bin counts (the store aggregates; no row
    reaches this process)."""
    data_contract = contract.load()
    until = config.until_ts or time.time()
    engine = prediction_store.engine()
    registry = model_registry.open()
    champion = registry.champion()
    if champion is None or champion.run_id is None:
        raise dg.Failure("no champion with a training run to compare against", allow_retries=False)
    mismatch = contract_mismatch(f"champion v{champion.version}", champion.tags, data_contract)
    if mismatch is not None:
        raise dg.Failure(f"cannot report drift: {mismatch}", allow_retries=False)
    thresholds = monitor_policy.thresholds()
    reference = binned_reference(registry.load_reference(champion.run_id), data_contract)
    counts = count_window(engine, data_contract, reference.fields, config.since_ts, until)
    if not counted_rows(counts):
        raise dg.Failure(
            f"no predictions between {config.since_ts} and {until}", allow_retries=False
        )
    quality = quality_from_bins(
        quality_bins(engine, data_contract, config.since_ts, until),
        thresholds.min_labels,
        data_contract,
    )
    report = binned_report(reference, counts, thresholds, quality)
    decision = decide_retrain(report, thresholds)
    figure = drift_figure(report)
    try:
        run = registry.log_monitoring_run(
            f"drift-vs-v{champion.version}",
            _report_metrics(report),
            {"drift/psi_per_feature.png": figure},
            {"dagster.run_id": context.run.run_id},
        )
        plot = figure_markdown(figure, "PSI per feature")
    finally:
        plt.close(figure)
    return dg.MaterializeResult(
        metadata={
            "rows": report.rows,
            "champion_version": champion.version,
            "drift_share": round(report.drift_share, 3),
            "drifted_features": ", ".join(report.drifted_features) or "none",
            "score_psi": round(report.score.psi, 4),
            "retrain": decision.retrain,
            "reason": decision.reason,
            "features": dg.MetadataValue.md(report.table().round(4).to_markdown(index=False)),
            "psi_per_feature": plot,
            "live_quality": dg.MetadataValue.json(report.quality),
            "mlflow_run": dg.MetadataValue.url(registry.run_url(run)),
        }
    )
