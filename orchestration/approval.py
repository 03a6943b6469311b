"""`approve_challenger`: the Dagster UI's way to approve a challenger left `pending-approval`
by the gate (CHURNOPS_GATE_APPROVAL=manual), the same step as `churnops approve VERSION`."""

import dagster as dg
from pydantic import Field

from orchestration.resources import ModelRegistryResource
from registry.interface import RegistryError
from registry.promotion import approve


class ApprovalConfig(dg.Config):
    version: str = Field(description="The pending version to promote to @champion.")
    approved_by: str = Field(description="Who approves it, recorded in the alias history.")


@dg.op(description="Promote a pending-approval challenger, recording who approved it.")
def approve_version(
    context: dg.OpExecutionContext, config: ApprovalConfig, model_registry: ModelRegistryResource
) -> dg.Output[str]:
    registry = model_registry.open()
    try:
        event = approve(registry, config.version, config.approved_by)
    except RegistryError as exc:  # retrying cannot make a version pending or the verdict fresh
        raise dg.Failure(str(exc), allow_retries=False) from exc
    context.log.info(f"@champion: {event.from_version} → {event.to_version} ({event.reason})")
    return dg.Output(
        event.to_version,
        metadata={
            "from_version": event.from_version or "none",
            "approved_by": config.approved_by,
            "at": event.at,
            "mlflow_champion": dg.MetadataValue.url(registry.version_url(event.to_version)),
        },
    )


@dg.job(
    description="Approve a challenger the gate left pending-approval (launchpad: version, "
    "approved_by)."
)
def approve_challenger() -> None:
    approve_version()
