"""Blocking asset checks on cleaned customers: a failed check stops training on bad data."""

from collections.abc import Callable

import dagster as dg
import pandas as pd

from churnops.data import quality
from churnops.data.quality import QualityResult
from orchestration.assets.features import clean_customers


def _check(name: str, rule: Callable[[pd.DataFrame], QualityResult], description: str):
    @dg.asset_check(asset=clean_customers, name=name, blocking=True, description=description)
    def _run(clean_customers: pd.DataFrame) -> dg.AssetCheckResult:
        result = rule(clean_customers)
        return dg.AssetCheckResult(
            passed=result.passed,
            description=result.summary,
            metadata={"summary": result.summary, **result.details},
        )

    return _run


CLEAN_CUSTOMER_CHECKS = [
    _check(
        "schema_matches_contract", quality.schema_matches, "Columns and dtypes follow the contract."
    ),
    _check("no_unexpected_nulls", quality.no_unexpected_nulls, "Only TotalCharges may be blank."),
    _check("values_in_range", quality.values_in_range, "Numbers in bounds, categories known."),
    _check("unique_customer_ids", quality.unique_customer_ids, "One row per customer id."),
    _check("label_balance", quality.label_balance, "Both classes present (minority >= 5%)."),
]
