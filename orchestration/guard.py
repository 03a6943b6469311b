"""The champion guard: a newly moved `@champion` that serving refuses (cannot load or score it),
or whose live error rate breaks the budget within the watch window, is moved back to the
previous champion by itself, the reason recorded in the alias history (`revert` events).

The sensor only decides; the `revert_champion` job moves the alias, so every revert is a
Dagster run with its reason, and a run key makes one revert per move."""

import time

import dagster as dg
import httpx
from pydantic import Field

from churnops.monitoring import prediction_store as store
from churnops.monitoring.guard import LiveErrors, judge_champion, live_errors
from orchestration.resources import (
    ChampionGuardPolicy,
    DataContractResource,
    ModelRegistryResource,
    PredictionStore,
    ServingEndpoint,
)
from registry.history import PUSHES, rollback_refusal
from registry.interface import CHAMPION, ModelRegistry, RegistryError

GUARD = "champion_guard"


class RevertConfig(dg.Config):
    version: str = Field(description="The champion to move away from (no-op if it moved on).")
    reason: str = Field(description="Why, recorded in the alias history.")


@dg.op(description="Move @champion back from a refused or failing version to the previous one.")
def revert_version(
    context: dg.OpExecutionContext, config: RevertConfig, model_registry: ModelRegistryResource
) -> dg.Output[str]:
    registry = model_registry.open()
    champion = registry.champion()
    if champion is None or champion.version != config.version:
        held = champion.version if champion else "none"
        context.log.info(f"@champion is {held} now, not v{config.version}: nothing to revert")
        return dg.Output(held, metadata={"reverted": False, "champion": held})
    try:
        event = registry.rollback(config.reason, by=GUARD, action="revert")
    except RegistryError as exc:  # the history cannot tell where to go; retrying will not
        raise dg.Failure(str(exc), allow_retries=False) from exc
    context.log.warning(f"@champion: v{event.from_version} → v{event.to_version}: {event.reason}")
    return dg.Output(
        event.to_version,
        metadata={
            "reverted": True,
            "from_version": config.version,
            "champion": event.to_version,
            "reason": config.reason,
        },
    )


@dg.job(
    description="Requested by champion_guard_sensor: move @champion back to the previous "
    "champion, recording why."
)
def revert_champion() -> None:
    revert_version()


def _refusal(serving: ServingEndpoint, version: str) -> tuple[str | None, str]:
    """(serving's reason for refusing `version`, or None; a note when serving is away)."""
    try:
        status = serving.model_status()
    except (httpx.HTTPError, ValueError) as exc:
        return None, f"; serving did not answer at {serving.status_url} ({type(exc).__name__})"
    if str(status.get("refused_version")) == version:
        return str(status.get("refused_reason") or "no reason given"), ""
    return None, ""


def _errors(version: str, since_ns: int, predictions: PredictionStore, contract) -> LiveErrors:
    """The champion's labelled answers since it was moved onto the alias."""
    window = store.read_predictions(
        predictions.engine(), since_ts=since_ns / 1e9, contract=contract
    )
    return live_errors(window, version, contract)


def _watched_since(registry: ModelRegistry, version: str) -> int | None:
    """When `version` was moved onto `@champion` by a forward move (gate, approval, or by hand
    outside churnops), or None when a rollback or revert put it back (not watched: the guard
    never walks back on its own through older champions)."""
    events = registry.alias_history(CHAMPION)
    last = events[-1] if events else None
    if last is None or last.to_version != version or last.action not in PUSHES:
        return None
    return last.at_ns


def build_guard_sensor(job, interval_seconds: int) -> dg.SensorDefinition:
    @dg.sensor(
        name="champion_guard_sensor",
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Records alias moves made outside churnops and reverts a newly moved "
        "@champion that serving refuses or whose live error rate breaks the budget.",
    )
    def champion_guard_sensor(
        context: dg.SensorEvaluationContext,
        model_registry: ModelRegistryResource,
        serving: ServingEndpoint,
        prediction_store: PredictionStore,
        guard_policy: ChampionGuardPolicy,
        contract: DataContractResource,
    ):
        registry = model_registry.open()
        external = registry.record_external_move("champion_guard_sensor")
        noted = f"recorded an external move ({external.reason}); " if external else ""
        champion = registry.champion()
        if champion is None:
            return dg.SkipReason(f"{noted}no @champion to guard")
        policy = guard_policy.policy()
        if policy.watch_seconds <= 0:
            return dg.SkipReason(f"{noted}automatic revert is off (CHURNOPS_REVERT_WATCH_SECONDS)")
        since_ns = _watched_since(registry, champion.version)
        if since_ns is None:
            return dg.SkipReason(
                f"{noted}champion v{champion.version} was put back by a rollback: not watched"
            )
        refused, away = _refusal(serving, champion.version)
        errors = None
        if refused is None and policy.error_budget is not None:
            errors = _errors(champion.version, since_ns, prediction_store, contract.load())
        age = (time.time_ns() - since_ns) / 1e9
        verdict = judge_champion(champion.version, age, refused, errors, policy)
        if not verdict.revert:
            return dg.SkipReason(f"{noted}{verdict.reason}{away}")
        refusal = rollback_refusal(registry.alias_history(CHAMPION), CHAMPION, champion.version)
        if refusal is not None:
            return dg.SkipReason(f"{noted}{verdict.reason}, but cannot revert: {refusal}")
        return dg.RunRequest(
            run_key=f"revert-v{champion.version}-{since_ns}",
            run_config={
                "ops": {
                    "revert_version": {
                        "config": {"version": champion.version, "reason": verdict.reason}
                    }
                }
            },
            tags={
                "churnops/trigger": "champion_guard_sensor",
                "churnops/reason": verdict.reason[:1000],
            },
        )

    return champion_guard_sensor
