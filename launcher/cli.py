"""`churnops`: run the whole platform on one machine and operate the registry.

Each command imports the heavy parts it uses (the MLflow client, the stack) when it runs, so
`churnops --help` answers at once; these are start-up savings, not cycles (lint-imports reads
function-level imports too and checks the layers).
"""

from __future__ import annotations

import json
import shlex
import signal
import threading
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from churnops.settings import Settings
from launcher.contract_cli import contract_app
from launcher.processes import ProcessFailed
from launcher.score_cli import score

if TYPE_CHECKING:
    import pandas as pd

    from churnops.contract import Contract
    from registry.interface import ModelRegistry, VersionInfo

app = typer.Typer(
    help="churnops: churn prediction with Dagster, MLflow and BentoML.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(soft_wrap=True)
app.add_typer(contract_app, name="contract")
app.command()(score)


def _registry(settings: Settings):
    # Imported on use: MLflow's client takes a second to import and `--help` should not wait.
    from launcher.credentials import use_stored_login
    from registry.mlflow_registry import MlflowModelRegistry

    use_stored_login(settings.state_dir)
    return MlflowModelRegistry(settings.tracking_uri, settings.model_name, settings.experiment)


@app.command()
def up(
    train: Annotated[
        bool, typer.Option(help="Materialize the pipeline when no champion exists yet.")
    ] = True,
) -> None:
    """Start MLflow, Dagster (one code server, webserver, daemon) and the Bento API on loopback;
    Ctrl-C stops."""
    from launcher.recovery import open_instance, reconcile, runs_in_flight
    from launcher.stack import Stack, launch_training

    settings = Settings()
    _contract(settings)  # a broken contract file stops here, before anything starts
    stack = Stack(settings)
    stopping, stop_now = threading.Event(), threading.Event()

    def on_signal(*_: object) -> None:
        (stop_now if stopping.is_set() else stopping).set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    instance = None
    try:
        with console.status("starting MLflow server…"):
            stack.start_mlflow()
        _log_in_as_training(stack)
        instance = open_instance(stack.prepare_dagster_home())
        left_in_flight = runs_in_flight(instance)  # before Dagster starts: a previous life's
        with console.status("starting Dagster code server, webserver and daemon…"):
            stack.start_dagster()
        with console.status("reconciling runs left by a previous stop…"):
            recovery = reconcile(
                instance, left_in_flight, _registry(settings), "found by churnops up"
            )
        for line in recovery.lines():
            console.print(f"[yellow]recovered:[/yellow] {line}", highlight=False)
        with console.status("starting Bento prediction service…"):
            stack.start_bento()
        champion = _registry(settings).champion()
        if champion is None and train:
            with console.status("no champion yet: running train_and_promote in Dagster…") as st:
                run_id = launch_training(
                    settings,
                    on_status=lambda rid, state: st.update(f"Dagster run {rid[:8]}: {state}"),
                )
            console.print(f"[green]training run {run_id} succeeded")
        if train or champion is not None:
            with console.status("waiting for the Bento service to load @champion…"):
                stack.wait_bento_ready(timeout=settings.alias_poll_seconds + 120)
        _print_urls(settings)
        while not stopping.wait(1.0):
            stack.check_alive()
    except ProcessFailed as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        if instance is not None and stack.dagster_started:
            _let_runs_finish(instance, settings.stop_grace_seconds, stop_now)
        with console.status("stopping services…"):
            stack.stop()
        console.print("stopped")


def _log_in_as_training(stack) -> None:
    """This process's own MLflow calls (recovery, the champion check) use the training account
    of the server it just started; the admin password is shown on the first start only."""
    import os

    from launcher.credentials import TRAINING

    os.environ.update(stack.login(TRAINING))
    if stack.admin_notice:
        console.print(f"[yellow]{stack.admin_notice}[/yellow]", highlight=False)


@app.command("mlflow-accounts")
def mlflow_accounts(
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for the MLflow server to answer /health.")
    ] = 120.0,
) -> None:
    """Create or update MLflow's service accounts and their permissions, as the admin logged in
    by MLFLOW_TRACKING_USERNAME/PASSWORD, with the passwords in CHURNOPS_MLFLOW_TRAINING_PASSWORD
    and CHURNOPS_MLFLOW_SERVING_PASSWORD: the deployments' one-shot job. Idempotent."""
    import os

    from launcher.credentials import PASSWORD_VAR, SERVING, TRAINING, USERNAME_VAR
    from launcher.mlflow_auth import ProvisioningError, churnops_experiments, provision_accounts
    from launcher.processes import wait_for_http

    settings = Settings()
    given = {TRAINING: settings.mlflow_training_password, SERVING: settings.mlflow_serving_password}
    missing = [f"the {name} password" for name, secret in given.items() if secret is None]
    missing += [name for name in (USERNAME_VAR, PASSWORD_VAR) if not os.environ.get(name)]
    if missing:
        console.print(f"[red]error:[/red] not set: {', '.join(missing)}", highlight=False)
        raise typer.Exit(2)
    passwords = {name: secret.get_secret_value() for name, secret in given.items() if secret}
    try:
        wait_for_http(f"{settings.tracking_uri.rstrip('/')}/health", wait)
        changed = provision_accounts(
            settings.tracking_uri,
            (os.environ[USERNAME_VAR], os.environ[PASSWORD_VAR]),
            passwords,
            settings.model_name,
            churnops_experiments(settings.experiment),
        )
    except (ProvisioningError, ProcessFailed) as exc:
        console.print(f"[red]error:[/red] {exc}", markup=False)
        raise typer.Exit(1) from exc
    for grant in changed:
        console.print(
            f"granted {grant.username} {grant.permission} on {grant.resource_type} "
            f"{grant.resource_id}",
            highlight=False,
        )
    console.print(f"accounts {TRAINING} and {SERVING} ready at {settings.tracking_uri}")


def _let_runs_finish(instance, grace: float, stop_now: threading.Event) -> None:
    """A stop lets runs in flight finish for a bounded time, saying so; a second Ctrl-C stops
    at once. Whatever is still running is failed on the next start and retried."""
    from launcher.recovery import wait_for_runs

    with console.status("checking for runs in flight…") as shown:

        def on_wait(running, left: float) -> None:
            names = ", ".join(f"{run.run_id[:8]} ({run.job}, {run.status})" for run in running)
            shown.update(
                f"waiting up to {left:.0f} s for Dagster run(s) {names} to finish; Ctrl-C "
                "again to stop now (they are retried on the next start)"
            )

        left = wait_for_runs(instance, grace, stop_now.is_set, on_wait)
    for run in left:
        then = "starts" if run.status == "QUEUED" else "is retried"
        console.print(
            f"run {run.run_id[:8]} ({run.job}, {run.status}) did not finish: it {then} on the "
            "next `churnops up`",
            highlight=False,
        )


def _print_urls(settings: Settings) -> None:
    from churnops.data.synthetic import is_demo_contract

    contract = _contract(settings)
    table = Table(show_header=False, box=None)
    table.add_row("Dagster UI", settings.dagster_url)
    mlflow_login = ""
    if settings.mlflow_auth:
        from launcher.credentials import ADMIN, credentials_path

        where = credentials_path(settings.state_dir)
        mlflow_login = f" (user {ADMIN}, password in {where})"
    table.add_row("MLflow UI", f"{settings.tracking_uri}{mlflow_login}")
    table.add_row("Prediction API", f"{settings.bento_url}/docs")
    table.add_row("Data contract", f"{contract.dataset} ({contract.fingerprint})")
    console.print(Panel(table, title="churnops is up (Ctrl-C to stop)"))
    if is_demo_contract(contract):
        body = "@serving/example_request.json"
    else:
        body = shlex.quote(json.dumps({"customer": contract.example_record()}))
    console.print(
        f"try: curl -s -X POST {settings.bento_url}/predict -H 'content-type: application/json' "
        f"-d {body}",
        soft_wrap=True,
    )


def _contract(settings: Settings) -> Contract:
    """The configured data contract; an unreadable or invalid file ends the command with its
    message (which names the file and key)."""
    from churnops.contract import ContractFileError, configured_contract

    try:
        return configured_contract(settings.contract)
    except ContractFileError as exc:
        console.print(f"[red]error:[/red] {exc}", markup=False)
        raise typer.Exit(1) from exc


@app.command()
def simulate(
    rows: Annotated[int, typer.Option(help="Customers to send.")] = 2000,
    drifted: Annotated[bool, typer.Option(help="Send a shifted population.")] = False,
    seed: Annotated[int, typer.Option(help="Traffic seed.")] = 1234,
    batch_size: Annotated[int, typer.Option(help="Customers per request.")] = 200,
    label_fraction: Annotated[float, typer.Option(help="Share of labels sent back.")] = 1.0,
    label_delay: Annotated[float, typer.Option(help="Seconds before labels are sent.")] = 0.0,
    url: Annotated[str | None, typer.Option(help="Prediction API; default from settings.")] = None,
) -> None:
    """Send realistic (optionally drifted) traffic and delayed labels to the prediction API:
    Telco demo customers under the shipped contract, else customers drawn from the champion's
    reference sample."""
    from rich.progress import Progress

    from churnops.data.synthetic import is_demo_contract
    from launcher.simulator import simulate as run_simulation

    settings = Settings()
    contract = _contract(settings)
    reference = None if is_demo_contract(contract) else _champion_reference(settings)
    base_url = url or settings.bento_url
    with Progress(console=console) as progress:
        task = progress.add_task("predictions", total=rows)
        result = run_simulation(
            base_url,
            rows,
            contract=contract,
            reference=reference,
            drifted=drifted,
            seed=seed,
            batch_size=batch_size,
            label_fraction=label_fraction,
            label_delay_seconds=label_delay,
            on_progress=lambda n: progress.advance(task, n),
        )
    console.print(
        f"{result.predictions} predictions in {result.requests} requests, "
        f"{result.labels_sent} labels sent, {result.errors} errors"
    )
    if result.errors:
        raise typer.Exit(1)


def _champion_reference(settings: Settings) -> pd.DataFrame:
    """The champion's reference sample (holdout features and scores), which simulated traffic
    is drawn from when the contract has no generator."""
    registry = _registry(settings)
    try:
        champion = registry.champion()
        reference = registry.load_reference(champion.run_id) if champion else None
    except Exception as exc:  # MLflow's client raises several types when the server is away
        console.print(
            f"[red]error:[/red] cannot read the champion's reference sample from "
            f"{settings.tracking_uri}: {type(exc).__name__}: {exc}",
            markup=False,
        )
        raise typer.Exit(1) from exc
    if reference is None:
        console.print(
            f"[red]error:[/red] model '{settings.model_name}' has no champion yet: traffic for "
            "a contract without a generator is drawn from the champion's reference sample"
        )
        raise typer.Exit(1)
    return reference


def _operator(by: str | None) -> str:
    """Who a person's alias move is recorded as: `--by`, else the OS user."""
    import getpass

    return by or getpass.getuser()


@app.command()
def rollback(
    reason: Annotated[str, typer.Option(help="Why; stored in the alias history.")] = "manual",
    to: Annotated[
        str | None,
        typer.Option(
            help="Version to go to, when the history cannot tell (default: the previous champion)."
        ),
    ] = None,
    by: Annotated[
        str | None, typer.Option(help="Who rolls back, for the history; default the OS user.")
    ] = None,
) -> None:
    """Move @champion back to the previous champion (serving follows within one poll); refuses,
    saying why, when the history and the live alias disagree."""
    from registry.interface import RegistryError

    settings = Settings()
    try:
        event = _registry(settings).rollback(reason, to=to, by=_operator(by))
    except RegistryError as exc:
        console.print(f"[red]error:[/red] {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from exc
    console.print(f"@champion: version {event.from_version} → {event.to_version}")


@app.command()
def approve(
    version: Annotated[str, typer.Argument(help="The pending-approval version to promote.")],
    by: Annotated[
        str | None, typer.Option(help="Who approves, for the history; default the OS user.")
    ] = None,
) -> None:
    """Promote a challenger the gate passed and left `pending-approval`
    (CHURNOPS_GATE_APPROVAL=manual), recording who approved it and when."""
    from registry.interface import RegistryError
    from registry.promotion import approve as approve_version

    settings = Settings()
    try:
        event = approve_version(_registry(settings), version, _operator(by))
    except RegistryError as exc:
        console.print(f"[red]error:[/red] {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from exc
    console.print(
        f"@champion: version {event.from_version} → {event.to_version}, approved by "
        f"{event.by} at {event.at}",
        highlight=False,
    )


@app.command()
def recover(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """After a crash: fail the Dagster runs left in flight (run retries re-execute them) and end
    MLflow runs left RUNNING. `churnops up` does this by itself on start; run this against an
    instance it does not start (e.g. the compose stack's code server), only when no run worker
    survives."""
    import os
    from pathlib import Path

    from launcher.recovery import open_instance, reconcile, runs_in_flight

    settings = Settings()
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home)
    instance = open_instance(home)
    orphans = runs_in_flight(instance)
    for run in orphans:
        console.print(f"in flight: {run.run_id} ({run.job}, {run.status})", highlight=False)
    if orphans and not yes and not typer.confirm("fail these runs so they are retried?"):
        raise typer.Exit(1)
    recovery = reconcile(instance, orphans, _registry(settings), "found by churnops recover")
    for line in recovery.lines() or ["nothing to recover"]:
        console.print(line, highlight=False)


@app.command()
def status(
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Exit 1 when monitoring is stuck or the daemon is not ticking."
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="The same facts as one JSON document, for scripts.")
    ] = False,
) -> None:
    """Show what runs where, the data contract, which version serves (and whether it was trained
    on that contract), registered versions and alias history, and whether monitoring works: the
    drift sensor's last tick, runs in flight or stuck, the last retraining."""
    from launcher.health import probe_services
    from launcher.monitoring_status import read_monitoring

    settings = Settings()
    contract = _contract(settings)
    monitoring = read_monitoring(settings)
    if as_json:
        _print_json(settings, contract, probe_services(settings), monitoring)
    else:
        _print_status(settings, contract, monitoring)
    if check and monitoring.problems:
        raise typer.Exit(1)


def _print_json(settings: Settings, contract: Contract, probes, monitoring) -> None:
    from dataclasses import asdict

    from launcher.live_status import live_facts

    champion = live = None
    try:
        registry = _registry(settings)
        info = registry.champion()
        champion = {"version": info.version, "tags": info.tags} if info else None
        live = asdict(live_facts(settings, contract, registry))
    except Exception as exc:  # MLflow's client raises several types when the server is away
        champion = {"error": f"{type(exc).__name__}: {exc}"}
    document = {
        "healthy": not monitoring.problems,
        "services": [asdict(probe) for probe in probes],
        "contract": {"dataset": contract.dataset, "fingerprint": contract.fingerprint},
        "champion": champion,
        "live_comparison": live,
        "monitoring": monitoring.as_json(),
    }
    print(json.dumps(document, indent=2, default=str))


def _print_status(settings: Settings, contract: Contract, monitoring) -> None:
    from registry.interface import CHAMPION

    console.print(_services_table(settings))
    console.print(
        f"data contract: {contract.dataset} (fingerprint {contract.fingerprint}) from "
        f"{settings.contract or 'the shipped Telco contract'}",
        markup=False,
    )
    _print_monitoring(monitoring)
    registry = _registry(settings)
    try:
        versions = registry.versions()
    except Exception as exc:  # MLflow's client raises several types when the server is away
        console.print(
            f"[red]error:[/red] the MLflow server at {settings.tracking_uri} did not answer "
            f"({type(exc).__name__}); start the platform with `churnops up` or set "
            "CHURNOPS_MLFLOW_TRACKING_URI"
        )
        raise typer.Exit(1) from exc
    title = f"model '{settings.model_name}'"
    table = Table("version", "aliases", "AUC", "gate", "why", "p-value", title=title)
    for info in versions:
        table.add_row(
            info.version,
            ", ".join(info.aliases),
            info.tags.get("holdout.roc_auc", ""),
            _gate_text(info.tags),
            info.tags.get("gate.summary", ""),
            info.tags.get("gate.p_value", ""),
        )
    console.print(table)
    champion = next((info for info in versions if CHAMPION in info.aliases), None)
    console.print(_champion_line(champion, contract), markup=False)
    _print_history(registry)
    _print_live_comparison(settings, contract, registry)
    if versions:
        _print_gate_report(registry, versions[-1])


def _gate_text(tags: dict[str, str]) -> str:
    """The gate's decision, and its approval when it waits for (or got) one."""
    from registry.promotion import APPROVAL_TAG

    decision, approval = tags.get("gate.decision", ""), tags.get(APPROVAL_TAG)
    return f"{decision} ({approval})" if approval and approval != decision else decision


def _print_history(registry: ModelRegistry) -> None:
    """The alias history, after recording a move made outside churnops (an operator's status
    is where such a move shows up; one who may not write tags still sees it)."""
    import time

    from registry.history import external_move

    try:
        registry.record_external_move("churnops status")
        unrecorded = None
    except Exception as exc:  # e.g. a read-only MLflow account: show it without recording
        console.print(f"[yellow]cannot record an external move:[/yellow] {exc}", markup=False)
        champion = registry.champion()
        unrecorded = external_move(
            registry.alias_history(),
            "champion",
            champion.version if champion else None,
            now_ns=time.time_ns(),
            at="now",
            detected_by="churnops status (not recorded)",
        )
    events = registry.alias_history() + ([unrecorded] if unrecorded else [])
    for event in events:
        by = f" by {event.by}" if event.by else ""
        console.print(
            f"{event.at}  {event.action:8} {event.from_version} → {event.to_version}{by}  "
            f"{event.reason}",
            markup=False,
            highlight=False,
        )


def _print_live_comparison(settings: Settings, contract: Contract, registry) -> None:
    """Champion and challenger on the same labelled requests, and the live gate's view."""
    from launcher.live_status import live_facts

    facts = live_facts(settings, contract, registry)
    comparison = facts.comparison
    if comparison is None:
        console.print(f"live comparison: {facts.note}", markup=False, highlight=False)
        return
    table = Table(
        "figure",
        "champion",
        "challenger",
        "challenger - champion (CI)",
        title=f"live comparison: {comparison.labelled:,} labelled paired requests "
        f"({comparison.churners:,} churners)",
    )
    for row in comparison.summary_rows():
        table.add_row(*row)
    console.print(table)
    verdict = facts.verdict
    gate = f"live gate ({settings.live_gate})"
    if facts.recorded:
        console.print(f"{gate}: recorded {facts.recorded}", markup=False, highlight=False)
    elif verdict is not None:
        console.print(
            f"{gate} would {verdict.decision}: {verdict.reason}", markup=False, highlight=False
        )


def _print_monitoring(monitoring) -> None:
    """Sensors, runs in flight, the last retraining, and what is wrong."""
    from launcher.monitoring_status import moment_text

    if not monitoring.reachable:
        console.print(f"[red]monitoring:[/red] {monitoring.problems[0]}", highlight=False)
        return
    table = Table("sensor", "state", "last tick", "result", "reason", title="monitoring")
    for sensor in monitoring.sensors:
        table.add_row(
            sensor.name,
            sensor.status,
            moment_text(sensor.last_tick) if sensor.last_tick else "never",
            sensor.last_result or "",
            (sensor.last_reason or "")[:160],
        )
    console.print(table)
    for run in monitoring.in_flight:
        console.print(
            f"in flight: run {run.run_id[:8]} ({run.job}) {run.status} since "
            f"{moment_text(run.created)}",
            highlight=False,
        )
    last = monitoring.last_retraining
    if last is not None:
        ended = f", ended {moment_text(last.ended)}" if last.ended else ""
        console.print(
            f"last retraining: run {last.run_id[:8]} {last.status} (created "
            f"{moment_text(last.created)}{ended})",
            highlight=False,
        )
    else:
        console.print("last retraining: none yet")
    for problem in monitoring.problems:
        console.print(f"[red]problem:[/red] {problem}", highlight=False)
    if not monitoring.problems:
        console.print("[green]monitoring is healthy")


def _champion_line(champion: VersionInfo | None, contract: Contract) -> str:
    """Which version holds @champion and whether serving can use it under `contract`."""
    from registry.interface import contract_mismatch

    if champion is None:
        return "@champion: none yet"
    mismatch = contract_mismatch(f"version {champion.version}", champion.tags, contract)
    if mismatch is None:
        return f"@champion: version {champion.version} (trained on this contract)"
    return f"@champion: {mismatch}: serving refuses it"


def _print_gate_report(registry: ModelRegistry, info: VersionInfo) -> None:
    """The newest version's gate: the full reason and its slice verdicts (from the report
    artifact on the version's run)."""
    from registry.promotion import load_report

    if "gate.decision" not in info.tags:
        console.print(f"version {info.version}: not gated yet")
        return
    console.print(
        f"version {info.version}: {info.tags['gate.decision']}: {info.tags['gate.reason']}"
    )
    report = load_report(registry, info.version)
    if report is None:
        console.print("  (no gate report artifact on its run)")
        return
    table = Table(
        "slice",
        "rows",
        "churn",
        "challenger AUC",
        "champion AUC",
        "diff",
        "verdict",
        title=f"gate slices of version {info.version}",
    )
    for row in report.get("slices", []):
        table.add_row(
            row["name"],
            f"{row['rows']:,}",
            f"{row['churn_rate']:.1%}",
            _figure(row["challenger_auc"]),
            _figure(row["champion_auc"]),
            _figure(row["diff"], signed=True),
            row["verdict_text"],
        )
    console.print(table)


def _figure(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _services_table(settings: Settings) -> Table:
    """Each service's address and whether it answers; the prediction API says what it serves."""
    from launcher.health import probe_services

    table = Table("service", "address", "state", title="services")
    for probe in probe_services(settings):
        colour = "green" if probe.up else "red"
        table.add_row(probe.name, probe.url, f"[{colour}]{probe.detail}")
    return table


if __name__ == "__main__":
    app()
