"""Content fingerprints of data frames, recorded with every model for reproducibility."""

from __future__ import annotations

import hashlib

import pandas as pd


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """Stable 16-hex digest of the rows and column names (order-sensitive, index-free)."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]
