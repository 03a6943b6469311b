"""Registry operations over the MLflow REST API: register, alias, promote, rollback, history.

No Dagster or BentoML imports: the orchestration and the CLI both drive the registry through this.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from registry.history import AliasEvent, parse_events, rollback_target

CHAMPION = "champion"
CHALLENGER = "challenger"


class RegistryError(RuntimeError):
    """A registry operation that cannot be done (no champion, nothing to roll back to, ...)."""


@dataclass(frozen=True)
class VersionInfo:
    version: str
    run_id: str | None
    source: str
    aliases: tuple[str, ...]
    tags: dict[str, str]

    @classmethod
    def of(cls, mv: ModelVersion) -> VersionInfo:
        return cls(str(mv.version), mv.run_id, mv.source, tuple(mv.aliases or ()), dict(mv.tags))


class ChurnRegistry:
    """One registered model on one MLflow server."""

    def __init__(self, tracking_uri: str, model_name: str) -> None:
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def ensure_model(self, description: str = "") -> None:
        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            self.client.create_registered_model(self.model_name, description=description)

    def register(
        self,
        model_uri: str,
        model_id: str,
        run_id: str,
        tags: dict[str, str],
        wait_seconds: float = 120,
    ) -> str:
        """New version from a logged model; returns once MLflow reports it READY."""
        self.ensure_model()
        mv = self.client.create_model_version(
            self.model_name, source=model_uri, run_id=run_id, tags=tags, model_id=model_id
        )
        deadline = time.monotonic() + wait_seconds
        while mv.status != "READY":
            if mv.status == "FAILED_REGISTRATION" or time.monotonic() > deadline:
                raise RegistryError(f"version {mv.version} not ready: {mv.status_message}")
            time.sleep(0.5)
            mv = self.client.get_model_version(self.model_name, mv.version)
        return str(mv.version)

    def version(self, version: str) -> VersionInfo:
        return VersionInfo.of(self.client.get_model_version(self.model_name, version))

    def versions(self) -> list[VersionInfo]:
        """Every version with its aliases (a version search leaves them out; the model has them)."""
        found = self.client.search_model_versions(f"name='{self.model_name}'")
        if not found:
            return []
        aliases: dict[str, list[str]] = {}
        for alias, version in self.client.get_registered_model(self.model_name).aliases.items():
            aliases.setdefault(str(version), []).append(alias)
        infos = (
            replace(VersionInfo.of(mv), aliases=tuple(sorted(aliases.get(str(mv.version), ()))))
            for mv in found
        )
        return sorted(infos, key=lambda v: int(v.version))

    def by_alias(self, alias: str) -> VersionInfo | None:
        try:
            return VersionInfo.of(self.client.get_model_version_by_alias(self.model_name, alias))
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def champion(self) -> VersionInfo | None:
        return self.by_alias(CHAMPION)

    def set_challenger(self, version: str) -> None:
        self.client.set_registered_model_alias(self.model_name, CHALLENGER, version)

    def tag_version(self, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, version, key, value)

    def promote(self, version: str, reason: str) -> AliasEvent:
        """Point `@champion` at `version` and record the move on that version."""
        return self._move_champion(version, "promote", reason)

    def rollback(self, reason: str = "manual rollback") -> AliasEvent:
        """Move `@champion` back to the version that held it before the current one."""
        target = rollback_target(self.alias_history(CHAMPION))
        if target is None:
            raise RegistryError(
                f"model '{self.model_name}' has no previous champion to roll back to"
            )
        return self._move_champion(target, "rollback", reason)

    def alias_history(self, alias: str = CHAMPION) -> list[AliasEvent]:
        return parse_events({v.version: v.tags for v in self.versions()}, alias)

    def _move_champion(self, version: str, action: str, reason: str) -> AliasEvent:
        current = self.champion()
        now = datetime.now(UTC)
        event = AliasEvent(
            alias=CHAMPION,
            action=action,  # type: ignore[arg-type]
            to_version=str(version),
            from_version=current.version if current else None,
            at=now.isoformat(timespec="seconds"),
            at_ns=time.time_ns(),
            reason=reason,
        )
        # Record first: a crash between the two calls leaves history ahead, never missing.
        self.client.set_model_version_tag(
            self.model_name, event.to_version, event.tag_key(), event.tag_value()
        )
        self.client.set_registered_model_alias(self.model_name, CHAMPION, event.to_version)
        challenger = self.by_alias(CHALLENGER)
        if challenger and challenger.version == event.to_version:
            self.client.delete_registered_model_alias(self.model_name, CHALLENGER)
        return event
