"""Calendar retraining beside the drift sensor: fresh data every week even when nothing drifts."""

import dagster as dg

from orchestration.jobs import score_customers, train_and_promote

weekly_retrain = dg.ScheduleDefinition(
    name="weekly_retrain",
    job=train_and_promote,
    cron_schedule="0 3 * * 1",
    execution_timezone="UTC",
    description="Mondays 03:00 UTC: retrain on fresh data through the same promotion gate. "
    "Off by default; turn it on in the Automation tab.",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)


def build_scoring_schedule(cron: str) -> dg.ScheduleDefinition:
    """The weekly retention list: score the base on `cron` (CHURNOPS_SCORING_CRON) into the
    partition of the scheduled date."""

    @dg.schedule(
        name="weekly_scoring",
        job=score_customers,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Scores the customer base with @champion into that date's partition.",
    )
    def weekly_scoring(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        date = context.scheduled_execution_time.date().isoformat()
        return dg.RunRequest(partition_key=date, tags={"churnops/trigger": "weekly_scoring"})

    return weekly_scoring
