"""The code location's shape, and assets and checks called directly."""

from __future__ import annotations

import dagster as dg
import pytest

from churnops.contract import telco_contract
from churnops.data.cleaning import clean_customers as clean
from churnops.data.synthetic import generate_customers
from churnops.settings import Settings
from orchestration.assets.checks import CLEAN_CUSTOMER_CHECKS
from orchestration.assets.features import clean_customers, customer_split
from orchestration.assets.ingest import raw_customers
from orchestration.definitions import build_resources, defs

pytestmark = pytest.mark.unit

GROUPS = {
    "raw_customers": "ingest",
    "clean_customers": "features",
    "customer_split": "features",
    "churn_candidate": "training",
    "candidate_evaluation": "training",
    "challenger_version": "deployment",
    "champion_version": "deployment",
    "drift_report": "monitoring",
    "churn_scores": "scoring",
    "prediction_log": "prediction_log",
}


def test_only_the_export_job_runs_the_day_partitioned_asset() -> None:
    """A partitioned asset in an unpartitioned job fails every run of it (no partition key)."""
    partitioned = {
        key.to_user_string()
        for assets_def in defs.assets
        if assets_def.partitions_def is not None
        for key in assets_def.keys
        if key.to_user_string() != "churn_scores"
    }
    assert partitioned == {"prediction_log"}
    for name in ("train_and_promote", "retrain_on_drift"):
        selected = {
            key.to_user_string()
            for key in defs.resolve_job_def(name).asset_layer.executable_asset_keys
        }
        assert not selected & partitioned, name


def test_every_asset_is_grouped_described_owned_and_versioned() -> None:
    specs = {
        spec.key.to_user_string(): spec for assets_def in defs.assets for spec in assets_def.specs
    }
    assert {key: spec.group_name for key, spec in specs.items()} == GROUPS
    for key, spec in specs.items():
        assert spec.description, key
        assert spec.owners and all(owner.startswith("team:") for owner in spec.owners), key
        assert spec.code_version, key
    # One team owns the platform's assets and one code version covers them: a change to either
    # is a change to every asset at once.
    assert len({tuple(spec.owners) for spec in specs.values()}) == 1
    assert len({spec.code_version for spec in specs.values()}) == 1


def test_assets_calling_mlflow_or_the_store_retry_with_exponential_backoff() -> None:
    external = {"raw_customers", "churn_candidate", "candidate_evaluation", "drift_report"}
    external |= {"challenger_version", "champion_version", "churn_scores", "prediction_log"}
    for assets_def in defs.assets:
        policy = assets_def.op.retry_policy
        if assets_def.key.to_user_string() in external:
            assert policy.max_retries >= 3 and policy.backoff == dg.Backoff.EXPONENTIAL
        else:
            assert policy is None, assets_def.key


def test_jobs_and_sensor_are_wired() -> None:
    train = defs.resolve_job_def("train_and_promote")
    retrain = defs.resolve_job_def("retrain_on_drift")
    assert "drift_report" not in {n.name for n in train.nodes_in_topological_order}
    assert "drift_report" in {n.name for n in retrain.nodes_in_topological_order}
    sensor = defs.resolve_sensor_def("drift_sensor")
    assert sensor.job_name == "retrain_on_drift"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_scoring_runs_on_promotion_on_a_schedule_and_keeps_one_partition_per_date() -> None:
    job = defs.resolve_job_def("score_customers")
    assert [n.name for n in job.nodes_in_topological_order] == ["churn_scores"]
    sensor = defs.resolve_sensor_def("champion_scoring_sensor")
    assert sensor.job_name == "score_customers"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    schedule = defs.resolve_schedule_def("weekly_scoring")
    assert schedule.job_name == "score_customers"
    assert schedule.cron_schedule == Settings().scoring_cron
    scores = next(a for a in defs.assets if a.key == dg.AssetKey("churn_scores"))
    assert isinstance(scores.partitions_def, dg.DailyPartitionsDefinition)
    # Lineage from the champion, without loading its output.
    assert dg.AssetKey("champion_version") in scores.dependency_keys


def test_weekly_retrain_schedule_is_listed_but_off_until_turned_on() -> None:
    schedule = defs.resolve_schedule_def("weekly_retrain")
    assert schedule.job_name == "train_and_promote"
    minute, hour, day_of_month, month, day_of_week = schedule.cron_schedule.split()
    # Once a week: one fixed minute of one fixed hour on one weekday, every month.
    assert minute.isdigit() and hour.isdigit() and day_of_week.isdigit()
    assert (day_of_month, month) == ("*", "*")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


def test_clean_customers_asset_types_the_raw_frame() -> None:
    raw = generate_customers(300, seed=1)
    resources = build_resources(Settings(synthetic_rows=300, retrain_with_production_labels=False))
    contract = resources["contract"]
    output = clean_customers(
        raw_customers=raw, customer_source=resources["customer_source"], contract=contract
    )
    assert len(output.value) == 300
    assert output.metadata["dagster/row_count"].value == 300
    columns = output.metadata["dagster/column_schema"].value.columns
    assert tuple(column.name for column in columns) == telco_contract().columns
    split = customer_split(
        clean_customers=output.value,
        customer_source=resources["customer_source"],
        training_policy=resources["training_policy"],
        contract=contract,
    )
    assert split.value.summary()["holdout_rows"] == 60


def test_raw_customers_names_the_contract() -> None:
    resources = build_resources(Settings(synthetic_rows=50, retrain_with_production_labels=False))
    output = raw_customers(
        customer_source=resources["customer_source"],
        contract=resources["contract"],
        gate_policy=resources["gate_policy"],
    )
    assert len(output.value) == 50
    assert output.metadata["contract"].value == "telco-churn"
    assert output.metadata["contract_fingerprint"].value == telco_contract().fingerprint


def test_synthetic_data_is_refused_for_another_contract(tmp_path) -> None:
    """The generator makes Telco data only: without a file, another contract fails at once."""
    other = tmp_path / "other.yaml"
    other.write_text(
        "version: 1\ndataset: other\ntarget: {name: churned, positive: [1], negative: [0]}\n"
        "features: [{name: age, kind: integer}]\n",
        encoding="utf-8",
    )
    resources = build_resources(
        Settings(contract=other, synthetic_rows=50, retrain_with_production_labels=False)
    )
    with pytest.raises(dg.Failure, match="synthetic generator only makes the Telco demo") as exc:
        raw_customers(
            customer_source=resources["customer_source"],
            contract=resources["contract"],
            gate_policy=resources["gate_policy"],
        )
    assert "'other'" in str(exc.value) and not exc.value.allow_retries


def test_blocking_checks_fail_on_bad_data() -> None:
    contract = telco_contract()
    frame = clean(generate_customers(300, seed=1), "synthetic", contract).frame
    frame.loc[1, "customerID"] = frame.loc[0, "customerID"]
    frame["Churn"] = 0
    frame["Churn"] = frame["Churn"].astype("int8")
    specs = [next(iter(check.check_specs)) for check in CLEAN_CUSTOMER_CHECKS]
    checks = {spec.name: check for spec, check in zip(specs, CLEAN_CUSTOMER_CHECKS, strict=True)}
    assert all(spec.blocking for spec in specs)
    resource = build_resources(Settings())["contract"]
    results = {
        name: check(clean_customers=frame, contract=resource) for name, check in checks.items()
    }
    assert not results["unique_customer_ids"].passed
    assert not results["label_balance"].passed
    assert results["schema_matches_contract"].passed
    assert results["values_in_range"].passed


def test_gate_slices_naming_no_feature_fail_before_training() -> None:
    settings = Settings(gate_slices=["tenure:0,12", "shoe_size"], synthetic_rows=50)
    resources = build_resources(settings)
    with pytest.raises(dg.Failure, match=r"slice\(s\) \['shoe_size'\] name no feature") as exc:
        raw_customers(
            customer_source=resources["customer_source"],
            contract=resources["contract"],
            gate_policy=resources["gate_policy"],
        )
    assert not exc.value.allow_retries


def test_the_prediction_log_is_exported_daily_by_a_running_schedule() -> None:
    job = defs.resolve_job_def("export_prediction_log")
    assert [n.name for n in job.nodes_in_topological_order] == ["prediction_log"]
    schedule = defs.resolve_schedule_def("daily_prediction_export")
    assert schedule.job_name == "export_prediction_log"
    assert schedule.cron_schedule == "0 1 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
