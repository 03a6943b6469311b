"""Raw customer records from the configured source."""

import dagster as dg
import pandas as pd

from churnops.contract import ContractError
from orchestration.metadata import frame_preview, platform_asset
from orchestration.resources import CustomerSource, DataContractResource, GatePolicy

INGEST = "ingest"


@platform_asset(INGEST, "pandas", external=True)
def raw_customers(
    customer_source: CustomerSource, contract: DataContractResource, gate_policy: GatePolicy
) -> dg.Output[pd.DataFrame]:
    """Customer records as delivered: a user's file in the contract's schema or seeded
    synthetic (Telco demo) data."""
    data_contract = contract.load()
    gate_policy.rules(data_contract)  # slices naming no feature fail now, not after training
    try:
        frame = customer_source.load(data_contract)
    except ContractError as exc:  # a bad file stays bad: fail now, not after every retry
        raise dg.Failure(str(exc), allow_retries=False) from exc
    return dg.Output(
        frame,
        metadata={
            "source": customer_source.name,
            "contract": data_contract.dataset,
            "contract_fingerprint": data_contract.fingerprint,
            "dagster/row_count": len(frame),
            "columns": len(frame.columns),
            "preview": frame_preview(frame),
        },
    )
