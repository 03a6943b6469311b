"""The champion scoring sensor, tick by tick: one request per move of `@champion`, for today's
scoring date; the schedule scores the date it runs on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import dagster as dg
import pytest

from churnops.contract import telco_contract
from churnops.settings import Settings
from orchestration.assets.scoring import SCORING_DATES, churn_scores
from orchestration.definitions import build_resources
from orchestration.jobs import score_customers
from orchestration.resources import InMemoryRegistryResource, memory_registry
from orchestration.schedules import build_scoring_schedule
from orchestration.sensors import build_scoring_sensor
from tests.unit.serving.contracts import GYM

pytestmark = pytest.mark.unit

SENSOR = build_scoring_sensor(score_customers, interval_seconds=30)


class Ticks:
    def __init__(self) -> None:
        name = uuid.uuid4().hex
        self.registry = memory_registry(name, "churn", "training")
        self.resources = {
            "contract": build_resources(Settings())["contract"],
            "model_registry": InMemoryRegistryResource(
                namespace=name, model_name="churn", experiment="training"
            ),
        }
        self.cursor: str | None = None

    def crown(self, contract=None) -> str:
        logged = self.registry.log_candidate(
            "c",
            object(),  # type: ignore[arg-type]
            {},
            {},
            contract=contract or telco_contract(),
        )
        version = self.registry.register(logged, {})
        self.registry.promote(version, "test")
        return version

    def tick(self):
        with dg.build_sensor_context(cursor=self.cursor, resources=self.resources) as context:
            result = SENSOR(context)
            self.cursor = context.cursor
        return result


def test_no_champion_no_scoring() -> None:
    ticks = Ticks()
    assert ticks.tick().skip_message == "no @champion yet"


def test_each_promotion_and_rollback_is_scored_once_for_today() -> None:
    ticks = Ticks()
    first = ticks.crown()
    request = ticks.tick()
    today = datetime.now(UTC).date().isoformat()
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == today
    assert today in SCORING_DATES.get_partition_keys()
    assert request.tags["churnops/reason"] == f"@champion moved from none to v{first}"
    assert ticks.tick().skip_message == f"champion v{first} already scored"
    second = ticks.crown()
    moved = ticks.tick()
    assert moved.tags["churnops/reason"] == f"@champion moved from {first} to v{second}"
    ticks.registry.rollback("bad list")
    back = ticks.tick()
    assert back.run_key != request.run_key  # the same version again, after a rollback
    assert back.tags["churnops/reason"] == f"@champion moved from {second} to v{first}"


def test_a_champion_of_another_contract_is_not_scored() -> None:
    ticks = Ticks()
    ticks.crown(GYM)
    assert ticks.tick().skip_message.startswith("not scoring: champion v1 was trained on")


def test_the_schedule_scores_the_date_it_runs_on() -> None:
    schedule = build_scoring_schedule("0 6 * * 1")
    moment = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    repository = dg.Definitions(
        assets=[churn_scores],
        jobs=[score_customers],
        schedules=[schedule],
        resources=build_resources(Settings()),
    ).get_repository_def()
    with dg.build_schedule_context(
        scheduled_execution_time=moment, repository_def=repository
    ) as context:
        request = schedule.evaluate_tick(context).run_requests[0]
    assert request.partition_key == "2026-11-23"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
