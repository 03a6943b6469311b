"""What a serving worker keeps out of its memory before it imports the model stack.

pandas imports pyarrow when it is installed, only to learn its version; pyarrow's libraries
then cost a worker ~50 MiB of resident memory (benchmarks/serving.py, worker RSS) and it never
reads or writes Arrow data: batch scoring and the Parquet export run in Dagster, not here.
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder

NOT_IN_A_WORKER = frozenset({"pyarrow"})


class _KeptOut(MetaPathFinder):
    """Imports of these packages fail as if they were not installed. (A `None` in sys.modules
    would not do: scikit-learn reads `sys.modules["pyarrow"]` as a module once it is there.)"""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.partition(".")[0] in NOT_IN_A_WORKER:
            raise ModuleNotFoundError(f"{name} is not used in a serving worker", name=name)
        return None


def keep_unused_libraries_out() -> None:
    """Make the libraries a worker never uses unimportable in this process (pandas then treats
    them as absent); one already imported stays as it is."""
    if any(isinstance(finder, _KeptOut) for finder in sys.meta_path):
        return
    if not NOT_IN_A_WORKER & set(sys.modules):
        sys.meta_path.insert(0, _KeptOut())
