"""Raw customer records from the configured source."""

import dagster as dg
import pandas as pd

from orchestration.metadata import frame_preview, platform_asset
from orchestration.resources import CustomerSource

INGEST = "ingest"


@platform_asset(INGEST, "pandas")
def raw_customers(customer_source: CustomerSource) -> dg.Output[pd.DataFrame]:
    """Customer records as delivered: a user's Telco-schema file or seeded synthetic data."""
    frame = customer_source.load()
    return dg.Output(
        frame,
        metadata={
            "source": customer_source.name,
            "dagster/row_count": len(frame),
            "columns": len(frame.columns),
            "preview": frame_preview(frame),
        },
    )
