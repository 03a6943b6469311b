"""Calendar retraining beside the drift sensor: fresh data every week even when nothing drifts."""

import dagster as dg

from orchestration.jobs import train_and_promote

weekly_retrain = dg.ScheduleDefinition(
    name="weekly_retrain",
    job=train_and_promote,
    cron_schedule="0 3 * * 1",
    execution_timezone="UTC",
    description="Mondays 03:00 UTC: retrain on fresh data through the same promotion gate. "
    "Off by default; turn it on in the Automation tab.",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
