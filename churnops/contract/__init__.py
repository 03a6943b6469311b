"""The data contract: one file says what a churn dataset's columns are; everything derives from it.

`CHURNOPS_CONTRACT` points to a YAML/TOML contract; unset, the shipped Telco contract
(`telco.yaml`, also the synthetic demo's schema) applies.
"""

from churnops.contract.files import (
    DEFAULT_CONTRACT_PATH,
    ContractFileError,
    configured_contract,
    dump_contract,
    load_contract,
    parse_contract,
    telco_contract,
)
from churnops.contract.schema import (
    DERIVED_ID,
    KINDS,
    Contract,
    Feature,
    Kind,
    Target,
    derive_row_id,
    label_key,
    parse_boolean,
)

# Probability at or above which a customer is labelled a churner (served `churn` field, F1).
DECISION_THRESHOLD = 0.5


class ContractError(ValueError):
    """Raw data that breaks the contract; the message names the file, row and column."""


__all__ = [
    "DECISION_THRESHOLD",
    "DEFAULT_CONTRACT_PATH",
    "DERIVED_ID",
    "KINDS",
    "Contract",
    "ContractError",
    "ContractFileError",
    "Feature",
    "Kind",
    "Target",
    "configured_contract",
    "derive_row_id",
    "dump_contract",
    "label_key",
    "load_contract",
    "parse_boolean",
    "parse_contract",
    "telco_contract",
]
