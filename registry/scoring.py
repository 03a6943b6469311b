"""A registered version made ready for batch scoring: the model, its served threshold and, when
reasons are asked for, its explainer (built on the version's monitoring reference sample)."""

from __future__ import annotations

from churnops.contract import Contract
from churnops.model.batch import ScoringModel
from churnops.model.reasons import build_explainer
from registry.interface import ModelRegistry, RegistryError, contract_mismatch, served_decision


def scoring_model(
    registry: ModelRegistry,
    contract: Contract,
    *,
    version: str | None = None,
    explain: bool = False,
) -> ScoringModel:
    """`version`, or the current `@champion`. A version trained on another contract is refused
    (its scores would mean nothing for these columns)."""
    info = registry.version(version) if version is not None else registry.champion()
    if info is None:
        raise RegistryError(
            f"model '{registry.model_name}' has no @champion yet: train one first "
            "(materialize train_and_promote, or `churnops up`)"
        )
    problem = contract_mismatch(f"{registry.model_name} v{info.version}", info.tags, contract)
    if problem is not None:
        raise RegistryError(problem)
    pipeline = registry.load_model(info.version)
    threshold, _ = served_decision(info.tags)
    explainer = None
    if explain:
        if not info.run_id:
            raise RegistryError(f"v{info.version} has no training run: no reference to explain")
        background = registry.load_reference(info.run_id)
        explainer = build_explainer(pipeline, contract, background)
    return ScoringModel.build(pipeline, info.version, threshold, contract, explainer)
