"""Is monitoring alive? The drift sensor's state and last tick, the daemon's heartbeats, runs in
flight (and stuck), the last retraining: read from the Dagster webserver's GraphQL API, judged
by a pure function so `churnops status --check` and its tests agree on what "stuck" means."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import httpx

from churnops.settings import Settings

LOCATION = "orchestration.definitions"
REPOSITORY = "__repository__"
SENSORS = (
    "drift_sensor",
    "champion_scoring_sensor",
    "champion_guard_sensor",
    "live_gate_sensor",
)
RETRAIN_JOB = "retrain_on_drift"
# The daemon writes heartbeats every few seconds; the scheduler's may lag by up to a minute.
HEARTBEAT_STALE_SECONDS = 120.0
START_TIMEOUT_SECONDS = 180.0  # as the instance's run_monitoring.start_timeout_seconds

SENSOR_QUERY = """
query Sensor($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { status ticks(limit: 1) {
      timestamp status skipReason runIds error { message } } } }
    ... on SensorNotFoundError { message }
    ... on PythonError { message }
  }
}
"""
DAEMON_QUERY = """
query { instance { daemonHealth { allDaemonStatuses {
  daemonType required healthy lastHeartbeatTime } } } }
"""
RUNS_QUERY = """
query Runs($filter: RunsFilter!, $limit: Int) {
  runsOrError(filter: $filter, limit: $limit) {
    ... on Runs { results { runId jobName status creationTime startTime endTime
      tags { key value } } }
  }
}
"""
IN_FLIGHT = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]


@dataclass(frozen=True)
class SensorFacts:
    name: str
    status: str  # RUNNING / STOPPED / missing
    last_tick: float | None  # Unix time
    last_result: str | None  # SKIPPED / SUCCESS / FAILURE
    last_reason: str | None  # skip reason or error


@dataclass(frozen=True)
class RunFacts:
    run_id: str
    job: str
    status: str
    created: float
    started: float | None
    ended: float | None


@dataclass
class MonitoringFacts:
    reachable: bool
    sensors: list[SensorFacts] = field(default_factory=list)
    daemon_heartbeats: dict[str, float | None] = field(default_factory=dict)
    in_flight: list[RunFacts] = field(default_factory=list)
    last_retraining: RunFacts | None = None
    interval_seconds: float = 30.0
    retrain_timeout_seconds: float = 3600.0
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def problems(facts: MonitoringFacts, now: float) -> list[str]:
    """Everything that means monitoring or retraining is not working, in words."""
    if not facts.reachable:
        return ["the Dagster webserver does not answer: monitoring cannot be checked"]
    found = []
    sensor_heartbeat = facts.daemon_heartbeats.get("SENSOR")
    if sensor_heartbeat is None or now - sensor_heartbeat > HEARTBEAT_STALE_SECONDS:
        seen = _ago(sensor_heartbeat, now)
        found.append(f"the Dagster daemon is not ticking sensors (last heartbeat {seen})")
    late = max(3 * facts.interval_seconds, HEARTBEAT_STALE_SECONDS)
    for sensor in facts.sensors:
        if sensor.status != "RUNNING":
            found.append(f"{sensor.name} is {sensor.status}")
        elif sensor.last_tick is None or now - sensor.last_tick > late:
            found.append(f"{sensor.name} has not ticked since {_ago(sensor.last_tick, now)}")
        elif sensor.last_result == "FAILURE":
            found.append(f"{sensor.name}'s last tick failed: {sensor.last_reason}")
    for run in facts.in_flight:
        age, since = now - run.created, moment_text(run.created)
        if run.status in ("NOT_STARTED", "STARTING") and age > START_TIMEOUT_SECONDS:
            found.append(
                f"run {run.run_id} ({run.job}) is stuck {run.status} since {since} "
                f"({age:.0f} s, start timeout {START_TIMEOUT_SECONDS:.0f} s)"
            )
        elif run.job == RETRAIN_JOB and age > facts.retrain_timeout_seconds:
            found.append(
                f"retraining run {run.run_id} is stuck {run.status} since {since} "
                f"({age:.0f} s, over the {facts.retrain_timeout_seconds:.0f} s timeout)"
            )
    return found


def read_monitoring(settings: Settings, timeout: float = 5.0) -> MonitoringFacts:
    """The facts from the running webserver; `reachable` False when it does not answer."""
    facts = MonitoringFacts(
        reachable=True,
        interval_seconds=float(settings.monitor_interval_seconds),
        retrain_timeout_seconds=settings.retrain_timeout_seconds,
    )
    try:
        with httpx.Client(base_url=settings.dagster_url, timeout=timeout) as client:
            facts.sensors = [_sensor(client, name) for name in SENSORS]
            facts.daemon_heartbeats = _heartbeats(client)
            facts.in_flight = _runs(client, {"statuses": IN_FLIGHT}, 50)
            last = _runs(client, {"pipelineName": RETRAIN_JOB}, 1)
            facts.last_retraining = last[0] if last else None
    except (httpx.HTTPError, KeyError, TypeError, ValueError):
        facts = MonitoringFacts(reachable=False)
    facts.problems = problems(facts, datetime.now(UTC).timestamp())
    return facts


def _graphql(client: httpx.Client, query: str, variables: dict | None = None) -> dict:
    response = client.post("/graphql", json={"query": query, "variables": variables or {}})
    response.raise_for_status()
    return response.json()["data"]


def _sensor(client: httpx.Client, name: str) -> SensorFacts:
    selector = {
        "repositoryLocationName": LOCATION,
        "repositoryName": REPOSITORY,
        "sensorName": name,
    }
    data = _graphql(client, SENSOR_QUERY, {"selector": selector})["sensorOrError"]
    if data["__typename"] != "Sensor":
        return SensorFacts(name, "missing", None, None, data.get("message"))
    state = data["sensorState"]
    tick = state["ticks"][0] if state["ticks"] else None
    if tick is None:
        return SensorFacts(name, state["status"], None, None, None)
    reason = tick["skipReason"] or (tick["error"] or {}).get("message")
    return SensorFacts(name, state["status"], tick["timestamp"], tick["status"], reason)


def _heartbeats(client: httpx.Client) -> dict[str, float | None]:
    statuses = _graphql(client, DAEMON_QUERY)["instance"]["daemonHealth"]["allDaemonStatuses"]
    return {item["daemonType"]: item["lastHeartbeatTime"] for item in statuses}


def _runs(client: httpx.Client, run_filter: dict, limit: int) -> list[RunFacts]:
    data = _graphql(client, RUNS_QUERY, {"filter": run_filter, "limit": limit})["runsOrError"]
    return [
        RunFacts(
            run["runId"],
            run["jobName"],
            run["status"],
            float(run["creationTime"]),
            run["startTime"],
            run["endTime"],
        )
        for run in data["results"]
    ]


def moment_text(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


def _ago(moment: float | None, now: float) -> str:
    if moment is None:
        return "never"
    return f"{moment_text(moment)} ({now - moment:.0f} s ago)"
