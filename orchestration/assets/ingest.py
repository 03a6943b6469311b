"""Raw customer records from the configured source."""

import dagster as dg
import pandas as pd

from churnops.contract import ContractError
from orchestration.metadata import frame_preview, platform_asset
from orchestration.resources import CustomerSource

INGEST = "ingest"


@platform_asset(INGEST, "pandas", external=True)
def raw_customers(customer_source: CustomerSource) -> dg.Output[pd.DataFrame]:
    """Customer records as delivered: a user's Telco-schema file or seeded synthetic data."""
    try:
        frame = customer_source.load()
    except ContractError as exc:  # a bad file stays bad: fail now, not after every retry
        raise dg.Failure(str(exc), allow_retries=False) from exc
    return dg.Output(
        frame,
        metadata={
            "source": customer_source.name,
            "dagster/row_count": len(frame),
            "columns": len(frame.columns),
            "preview": frame_preview(frame),
        },
    )
