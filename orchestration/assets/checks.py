"""Blocking asset checks on cleaned customers: a failed check stops training on bad data."""

from collections.abc import Callable

import dagster as dg
import pandas as pd

from churnops.contract import Contract
from churnops.data import quality
from churnops.data.quality import QualityResult
from orchestration.assets.features import clean_customers
from orchestration.resources import DataContractResource

Rule = Callable[..., QualityResult]  # (cleaned frame, contract=...) -> result


def _check(name: str, rule: Rule, description: str):
    @dg.asset_check(asset=clean_customers, name=name, blocking=True, description=description)
    def _run(clean_customers: pd.DataFrame, contract: DataContractResource) -> dg.AssetCheckResult:
        data_contract: Contract = contract.load()
        result = rule(clean_customers, contract=data_contract)
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
    _check(
        "no_unexpected_nulls",
        quality.no_unexpected_nulls,
        "Only features the contract marks nullable may be blank.",
    ),
    _check(
        "values_in_range",
        quality.values_in_range,
        "Numbers within the contract's bounds, closed categories known.",
    ),
    _check("unique_customer_ids", quality.unique_customer_ids, "One row per customer id."),
    _check("label_balance", quality.label_balance, "Both classes present (minority >= 5%)."),
]
