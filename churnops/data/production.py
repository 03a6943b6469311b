"""A customer file joined with labelled production records, so retraining sees recent customers.

The file keeps its own headers (lower-case, aliases) and the store's records use the contract's
names: both go under the contract's names before they are stacked, so one field is one column.
"""

from __future__ import annotations

import pandas as pd

from churnops.contract import Contract
from churnops.data.cleaning import clean_customers, file_problems

PREDICTION_STORE = "prediction store"


def with_production_records(
    raw: pd.DataFrame, production: pd.DataFrame, contract: Contract
) -> pd.DataFrame:
    """`raw` (a file's rows) followed by `production` (contract-named records), columns renamed
    to the contract's names; a customer id in both keeps the production row, which comes last
    and so wins cleaning's de-duplication. The production records are checked on their own
    first, so a problem there names the prediction store and its row, and the file's rows keep
    their line numbers. A file whose columns break the contract comes back as it is: cleaning
    then names what is missing or repeated rather than blaming cells."""
    if production.empty or file_problems(raw, "", contract):
        return raw
    clean_customers(production, PREDICTION_STORE, contract)  # raises naming the store's row
    base = raw.rename(columns=contract.header_mapping(raw.columns))
    return pd.concat([base.astype(object), production.astype(object)], ignore_index=True)
