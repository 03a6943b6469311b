"""Serving benchmark: the same champion served by our Bento service, by `mlflow models serve`
(the peer an MLflow user gets for free) and in-process (the limit), under wrk load, next to two
reference servers measured in the same run: a BentoML service answering a constant (the
framework ceiling) and bare uvicorn + Starlette parsing the same body (the HTTP ceiling); and
the estimator-only compute limit (the fitted trees on an encoded matrix, 10k rows a call).

    python -m benchmarks.serving            # full run: 10 s per cell
    python -m benchmarks.serving --smoke    # a few seconds per cell, to keep it working

Every server runs as its own process on 127.0.0.1 and is loaded by wrk (a separate process)
with one fixed request body per cell. Prints a markdown table and writes JSON + markdown.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from threadpoolctl import threadpool_limits

from benchmarks.common import (
    MIB,
    RssSampler,
    install_program,
    machine,
    markdown_table,
    process_rss,
    write_report,
)
from churnops.contract import telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.synthetic import generate_customers
from churnops.model.recipes import train
from churnops.model.scoring import churn_probability, rows_to_frame
from launcher.mlflow_server import local_mlflow_server
from launcher.processes import ManagedProcess, free_port
from launcher.stack import REPO_ROOT, bento_command
from registry.mlflow_registry import MlflowModelRegistry

BIN = Path(sys.executable).parent
MODEL = "churn-bench"
# The benchmark serves the Telco demo (the generator's schema).
TELCO = telco_contract()
IN_PROCESS = "in-process predict_proba"
BENTO_CEILING = "constant bento (framework ceiling)"
HTTP_CEILING = "uvicorn + starlette (HTTP ceiling)"
COMPUTE_LIMIT = "estimator only (encoded matrix, 10k rows/call, 1 thread)"
COMPUTE_BATCH = 10_000
SHADOW = "bento (shadow)"
API_ROUTE = "bento (BentoML API route only)"
# A shadow server makes one more model call per micro-batch: at most the model's share of a
# request's cost again, so it should keep at least half of plain serving's throughput.
SHADOW_MAX_COST = 0.5
console = Console(stderr=True)

# wrk prints its figures as one JSON line when a run ends (latency in microseconds).
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open(os.getenv("BODY_FILE")):read("*a")
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


@dataclass(frozen=True)
class Server:
    """A way to serve the champion: how to start it and what a request looks like."""

    name: str
    route: Callable[[int], str]  # path for a request of this many records
    body: Callable[[list[dict]], dict]
    command: Callable[[int], list[str]]
    env: dict[str, str]


@dataclass
class Cell:
    server: str
    rows_per_request: int
    concurrency: int
    requests_per_s: float
    rows_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    rss_mib: float
    worker_rss_mib: float = 0.0  # the tree's largest process: a server's worker


def register_champion(tracking_uri: str, train_rows: int) -> str:
    """Train the production recipe on synthetic customers and make it `@champion`; a second
    version, trained on another sample, is `@challenger` (the shadow server scores with both)."""
    registry = MlflowModelRegistry(tracking_uri, MODEL, "benchmark")
    registry.ensure_model("benchmark model")
    versions = []
    for seed in (7, 8):
        frame = generate_customers(train_rows, seed=seed)
        customers = clean_customers(frame, "synthetic", TELCO).frame
        model = train(customers, "hist_gradient_boosting", seed=42, contract=TELCO)
        logged = registry.log_candidate("benchmark", model, {}, {}, contract=TELCO)
        versions.append(registry.register(logged, tags={}))
    champion, challenger = versions
    registry.promote(champion, "benchmark")
    registry.set_challenger(challenger)
    return registry.model_uri(champion)


def request_records(count: int) -> list[dict]:
    """Contract records as a client sends them (no label; a blank number is null)."""
    columns = TELCO.required_columns(with_target=False)
    frame = generate_customers(count, seed=11).loc[:, list(columns)].astype(object)
    frame = frame.where(frame.notna(), None)
    records = frame.to_dict(orient="records")
    for record in records:
        record[TELCO.id_name] = str(record[TELCO.id_name])
    return records


def servers(tracking_uri: str, model_uri: str, state: Path) -> list[Server]:
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    base = {**os.environ, "PATH": path, "MLFLOW_TRACKING_URI": tracking_uri}

    def bento(
        name: str,
        logging: bool = True,
        workers: int = 1,
        rollout: str = "off",
        lean_route: bool = True,
    ) -> Server:
        env = {
            **base,
            "CHURNOPS_MLFLOW_TRACKING_URI": tracking_uri,
            "CHURNOPS_MODEL_NAME": MODEL,
            "CHURNOPS_HOME": str(state / f"bento-{logging}-{workers}-{rollout}"),
            "CHURNOPS_PREDICTION_LOGGING": str(logging).lower(),
            "CHURNOPS_SERVING_WORKERS": str(workers),
            "CHURNOPS_ROLLOUT": rollout,
            "CHURNOPS_SERVING_LEAN_ROUTE": str(lean_route).lower(),
            "BENTOML_HOME": str(state / "bentoml"),
        }
        return Server(
            name,
            lambda rows: "/predict" if rows == 1 else "/predict_batch",
            lambda records: (
                {"customer": records[0]} if len(records) == 1 else {"customers": records}
            ),
            lambda port: bento_command("127.0.0.1", port),
            env,
        )

    def reference(name: str, command: Callable[[int], list[str]]) -> Server:
        env = {**base, "BENTOML_HOME": str(state / "bentoml")}
        bento_server = bento(name)
        return Server(name, bento_server.route, bento_server.body, command, env)

    mlflow_command = [str(BIN / "mlflow"), "models", "serve", "-m", model_uri]
    return [
        reference(
            BENTO_CEILING,
            lambda port: [
                str(BIN / "bentoml"),
                *("serve", "benchmarks.reference.constant_bento:ConstantAnswer"),
                *("--host", "127.0.0.1", "--port", str(port)),
            ],
        ),
        reference(
            HTTP_CEILING,
            lambda port: [
                str(BIN / "uvicorn"),
                "benchmarks.reference.starlette_app:app",
                *("--host", "127.0.0.1", "--port", str(port)),
                *("--no-access-log", "--log-level", "warning"),
            ],
        ),
        bento("bento"),
        bento("bento (logging off)", logging=False),
        bento("bento (2 workers)", workers=2),
        bento(SHADOW, rollout="shadow"),
        bento(API_ROUTE, lean_route=False),
        Server(
            "mlflow models serve",
            lambda rows: "/invocations",
            lambda records: {"dataframe_records": records},
            lambda port: [
                *mlflow_command,
                *("--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)),
            ],
            base,
        ),
    ]


def start(server: Server, port: int, log: Path, probe: dict) -> tuple[ManagedProcess, float]:
    """Start the server; cold start is process start until the first 200 on a prediction."""
    process = ManagedProcess(server.name, server.command(port), log, env=server.env, cwd=REPO_ROOT)
    started = time.monotonic()
    process.start()
    url = f"http://127.0.0.1:{port}{server.route(1)}"
    deadline = started + 180
    while time.monotonic() < deadline:
        if not process.running:
            raise RuntimeError(f"{server.name} exited:\n{process.log_tail()}")
        try:
            if httpx.post(url, json=probe, timeout=5).status_code == 200:
                return process, time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    process.stop()
    raise RuntimeError(f"{server.name} never answered 200 on {url}:\n{process.log_tail()}")


# What a serving worker imports, in the order it does: the service module (all the supervisor
# imports), then the runtime its __init__ loads.
WORKER_IMPORTS = "import serving.service, serving.runtime"


def import_profile(statement: str = WORKER_IMPORTS, top: int = 12) -> dict[str, float]:
    """Seconds a fresh interpreter spends importing each top-level package's own modules for
    `statement` (Python's `-X importtime`, self time summed per package), largest first."""
    done = subprocess.run(  # noqa: S603 - our interpreter, a fixed statement
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    seconds: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        if own.strip().isdigit():
            package = name.strip().split(".")[0]
            seconds[package] = seconds.get(package, 0.0) + int(own) / 1e6
    ranked = sorted(seconds.items(), key=lambda item: -item[1])
    return {name: round(value, 3) for name, value in ranked[:top]} | {
        "total": round(sum(seconds.values()), 3)
    }


def run_wrk(wrk: str, url: str, body_file: Path, concurrency: int, seconds: float) -> dict:
    script = body_file.with_suffix(".lua")
    script.write_text(WRK_SCRIPT)
    command = [
        wrk,
        f"-t{min(concurrency, 2)}",
        f"-c{concurrency}",
        f"-d{max(1, math.ceil(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(  # noqa: S603
        command,
        env={**os.environ, "BODY_FILE": str(body_file)},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def drain(url: str, body_file: Path) -> None:
    """Wait out what the warm-up's clients left queued (wrk stops with up to 32 requests in
    flight, which the server still answers): one request sent now is answered after them.
    Without it the first requests of the 1-client cell measured that drain (~0.2-0.4 s at
    1,000 records), not one client."""
    httpx.post(
        url,
        content=body_file.read_bytes(),
        headers={"content-type": "application/json"},
        timeout=120,
    )


def measure_server(
    server: Server, wrk: str, records: list[dict], args: argparse.Namespace, work: Path
) -> tuple[list[Cell], float, dict | None]:
    """The server's cells, its cold start and, for our plain service, the soak (or None)."""
    port = free_port()
    process, cold_start = start(
        server, port, work / f"{server.name.split()[0]}-{port}.log", server.body(records[:1])
    )
    cells = []
    try:
        for rows in args.rows:
            url, body_file = _request(server, port, records[:rows], work)
            run_wrk(wrk, url, body_file, max(args.concurrency), args.warmup)
            drain(url, body_file)
            for concurrency in args.concurrency:
                console.log(f"{server.name}: {rows} row(s)/request, {concurrency} clients")
                with RssSampler(process.proc.pid, interval=0.2) as rss:
                    figures = run_wrk(wrk, url, body_file, concurrency, args.duration)
                seconds = figures["duration_us"] / 1e6
                per_s = figures["requests"] / seconds
                cells.append(
                    Cell(
                        server.name,
                        rows,
                        concurrency,
                        per_s,
                        per_s * rows,
                        figures["p50_us"] / 1000,
                        figures["p99_us"] / 1000,
                        figures["errors"],
                        rss.peak / MIB,
                        rss.largest_peak / MIB,
                    )
                )
        soaked = None
        if server.name == "bento" and args.soak_requests:
            url, body_file = _request(server, port, records[:1], work)
            soaked = soak(wrk, url, body_file, process.proc.pid, args)
    finally:
        process.stop()
    return cells, cold_start, soaked


def _request(server: Server, port: int, records: list[dict], work: Path) -> tuple[str, Path]:
    """The URL and the body file wrk sends `records` with to the server on `port`."""
    body_file = work / f"body-{port}-{len(records)}.json"
    body_file.write_text(json.dumps(server.body(records)))
    return f"http://127.0.0.1:{port}{server.route(len(records))}", body_file


def soak(wrk: str, url: str, body_file: Path, pid: int, args: argparse.Namespace) -> dict:
    """Single-record requests at the top concurrency until `--soak-requests` have been answered
    (after every cell), the worker's RSS read at the end of each chunk: whether it levels off."""
    concurrency = max(args.concurrency)
    answered = errors = 0
    seconds = 0.0
    checkpoints = []
    started = time.monotonic()
    with RssSampler(pid, interval=0.5) as rss:
        while answered < args.soak_requests:
            console.log(f"bento soak: {answered:,} of {args.soak_requests:,} requests")
            figures = run_wrk(wrk, url, body_file, concurrency, args.soak_chunk)
            answered += figures["requests"]
            errors += figures["errors"]
            seconds += figures["duration_us"] / 1e6
            worker = max(process_rss(pid), default=0)
            rss.largest_peak = max(rss.largest_peak, worker)  # this reading counts too
            checkpoints.append([answered, round(worker / MIB, 1)])
    return {
        "requests": answered,
        "clients": concurrency,
        "seconds": round(time.monotonic() - started, 1),
        "requests_per_s": round(answered / seconds, 1) if seconds else 0.0,
        "errors": errors,
        "worker_rss_mib_peak": round(rss.largest_peak / MIB, 1),
        "worker_rss_mib_end": checkpoints[-1][1] if checkpoints else 0.0,
        "checkpoints": checkpoints,  # [requests answered so far, worker RSS MiB]
    }


def soak_text(soaked: dict | None) -> str:
    if not soaked:
        return ""
    steps = ", ".join(f"{n:,}: {mib:.0f}" for n, mib in soaked["checkpoints"])
    return (
        f"Soak (bento, after its cells): {soaked['requests']:,} single-record requests at "
        f"{soaked['clients']} clients in {soaked['seconds']:.0f} s "
        f"({soaked['requests_per_s']:,.0f} req/s, {soaked['errors']} errors); worker RSS MiB "
        f"peak {soaked['worker_rss_mib_peak']:.0f}, end {soaked['worker_rss_mib_end']:.0f}; "
        f"after each chunk (requests: MiB): {steps}\n\n"
    )


def in_process(model_uri: str, tracking_uri: str, records: list[dict], args) -> list[Cell]:
    """The limit: `predict_proba` on a prepared frame in this process, no HTTP, no JSON; and
    the compute limit: the fitted estimator alone on the encoded matrix, in batches of 10k."""
    model = MlflowModelRegistry(tracking_uri, MODEL, "benchmark").load_model(model_uri)
    cells = []
    for rows, threads in itertools.product(args.rows, (None, 1)):
        values = [[record[name] for name in TELCO.feature_names] for record in records[:rows]]
        frame = rows_to_frame(values, TELCO)
        call = partial(churn_probability, model, frame, TELCO)
        with threadpool_limits(limits=threads):
            cells.append(_time_calls(call, rows, threads, args))
    cells.append(compute_limit(model, records, args))
    return cells


def compute_limit(model, records: list[dict], args) -> Cell:
    """What the model itself costs: the pipeline's final estimator on an already encoded float
    matrix of 10k rows, one thread. A served row cannot cost less than this."""
    values = [[record[name] for name in TELCO.feature_names] for record in records]
    frame = rows_to_frame(values, TELCO)
    repeats = -(-COMPUTE_BATCH // len(frame))
    encoded = model[:-1].transform(frame)
    matrix = np.tile(np.asarray(encoded, dtype=np.float64), (repeats, 1))[:COMPUTE_BATCH]
    estimator = model[-1]
    with threadpool_limits(limits=1):
        cell = _time_calls(partial(estimator.predict_proba, matrix), COMPUTE_BATCH, 1, args)
    return replace(cell, server=COMPUTE_LIMIT)


def _time_calls(call: Callable[[], object], rows: int, threads: int | None, args) -> Cell:
    warm_until = time.perf_counter() + args.warmup
    while time.perf_counter() < warm_until:
        call()
    latencies = []
    deadline = time.perf_counter() + args.duration
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - started)
    per_s = len(latencies) / sum(latencies)
    return Cell(
        f"{IN_PROCESS} ({threads or os.cpu_count()} OpenMP threads)",
        rows,
        1,
        per_s,
        per_s * rows,
        float(np.percentile(latencies, 50) * 1000),
        float(np.percentile(latencies, 99) * 1000),
        0,
        RssSampler().sample() / MIB,
    )


def best_in_process(cells: list[Cell], rows: int) -> Cell | None:
    """The limit: the faster of the in-process thread settings for this request size."""
    mine = [c for c in cells if c.server.startswith(IN_PROCESS) and c.rows_per_request == rows]
    return max(mine, key=lambda c: c.rows_per_s, default=None)


def fdatasync_latency_us(directory: Path, times: int = 500) -> float:
    """Median microseconds of one journal-sized append and its `fdatasync` in `directory`: what
    the durable log adds, at the least, to a request that has no other to share its sync with."""
    path = directory / "fdatasync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    line = b"x" * 400 + b"\n"  # one Telco row as the journal writes it
    seconds = []
    try:
        for _ in range(times):
            started = time.perf_counter()
            os.write(fd, line)
            os.fdatasync(fd)
            seconds.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return float(np.median(seconds) * 1e6)


def verdicts(
    cells: list[Cell],
    cold: dict[str, float],
    fdatasync_us: float | None = None,
    soaked: dict | None = None,
) -> dict[str, dict[str, object]]:
    """The issues' targets, each with the figures it compares."""

    def cell(server: str, rows: int, concurrency: int) -> Cell | None:
        return next(
            (
                c
                for c in cells
                if (c.server, c.rows_per_request, c.concurrency) == (server, rows, concurrency)
            ),
            None,
        )

    top = max(c.concurrency for c in cells)
    batch = max(c.rows_per_request for c in cells if c.server != COMPUTE_LIMIT)
    ours, peer = cell("bento", 1, top), cell("mlflow models serve", 1, top)
    out: dict[str, dict[str, object]] = {}
    if ours and peer:
        ratio = ours.requests_per_s / peer.requests_per_s
        out[f"single-record throughput at {top} clients >= 10x mlflow serve, p99 below"] = {
            "ratio": round(ratio, 2),
            "p99_ms": [round(ours.p99_ms, 1), round(peer.p99_ms, 1)],
            "met": ratio >= 10 and ours.p99_ms < peer.p99_ms,
        }
    ceiling = cell(BENTO_CEILING, 1, top)
    if ours and ceiling:
        share = ours.requests_per_s / ceiling.requests_per_s
        out[f"single-record throughput at {top} clients >= the framework ceiling"] = {
            "share": round(share, 2),
            "met": share >= 1.0,
        }
    tails = [c for c in cells if c.server == "bento" and c.concurrency in (1, 8)]
    if tails:
        worst = max(tails, key=lambda c: c.p99_ms / c.p50_ms)
        out["p99 <= 4x p50 in every cell at 1 and 8 clients"] = {
            "worst": round(worst.p99_ms / worst.p50_ms, 1),
            "cell": [worst.rows_per_request, worst.concurrency],
            "met": worst.p99_ms <= 4 * worst.p50_ms,
        }
    compute = next((c for c in cells if c.server == COMPUTE_LIMIT), None)
    served = [
        c
        for c in cells
        if c.server in ("bento", "bento (2 workers)") and c.rows_per_request == batch
    ]
    if compute and served and batch > 1:
        share = max(c.rows_per_s for c in served) / compute.rows_per_s
        out[f"{batch}-record requests >= 25% of the estimator-only compute limit"] = {
            "share": round(share, 2),
            "met": share >= 0.25,
        }
    if "bento" in cold:
        out["cold start <= 6 s"] = {"seconds": round(cold["bento"], 1), "met": cold["bento"] <= 6}
    rss = [c for c in cells if c.server == "bento"]
    if rss:
        worker = max(c.worker_rss_mib for c in rss)
        verdict = {
            "worker_mib": round(worker),
            "process_tree_mib": round(max(c.rss_mib for c in rss)),
        }
        name = "RSS of one worker <= 400 MiB (peak in this run)"
        if soaked:
            worker = max(worker, soaked["worker_rss_mib_peak"])
            more = f"{soaked['requests']:,}"
            name = f"RSS of one worker <= 400 MiB over every cell and {more} more requests"
            verdict |= {
                "worker_mib": round(worker),
                "soak_requests": soaked["requests"],
                "soak_worker_mib_end": soaked["worker_rss_mib_end"],
            }
        out[name] = {**verdict, "met": worker <= 400}
    limit = best_in_process(cells, batch)
    best = max(
        (c.rows_per_s for c in cells if c.server == "bento" and c.rows_per_request == batch),
        default=0.0,
    )
    if limit and batch > 1:
        share = best / limit.rows_per_s
        out[f"{batch}-record requests >= 30% of in-process rows/s"] = {
            "share": round(share, 2),
            "met": share >= 0.3,
        }
    costs = {}
    for c in cells:
        off = cell("bento (logging off)", c.rows_per_request, c.concurrency)
        if c.server == "bento" and off and off.requests_per_s:
            costs[(c.rows_per_request, c.concurrency)] = 1 - c.requests_per_s / off.requests_per_s
    if costs:
        worst = max(costs, key=costs.__getitem__)
        verdict: dict[str, object] = {
            "worst_cost": round(costs[worst], 3),
            "cell": list(worst),
            "mean_cost": round(sum(costs.values()) / len(costs), 3),
            "met": costs[worst] <= 0.10,
        }
        lone = cell("bento (logging off)", 1, 1)
        if fdatasync_us is not None and lone is not None:
            # One client: every request syncs alone, so its sync is the least the log costs.
            verdict["fdatasync_us"] = round(fdatasync_us)
            verdict["fdatasync_share_of_a_lone_request"] = round(
                fdatasync_us / 1000 / (lone.p50_ms + fdatasync_us / 1000), 3
            )
        out["durable prediction log (journal, group commit) costs <= 10% in every cell"] = verdict
    shadow = [
        (c, plain)
        for c in cells
        if c.server == SHADOW and (plain := cell("bento", c.rows_per_request, c.concurrency))
    ]
    if shadow:
        costs = [1 - c.requests_per_s / plain.requests_per_s for c, plain in shadow]
        added = [c.p50_ms - plain.p50_ms for c, plain in shadow]
        out[f"shadow mode (both versions score every batch) costs <= {SHADOW_MAX_COST:.0%}"] = {
            "worst_cost": round(max(costs), 3),
            "mean_cost": round(sum(costs) / len(costs), 3),
            "p50_ms_added_worst": round(max(added), 2),
            "met": max(costs) <= SHADOW_MAX_COST,
        }
    errors = sum(c.errors for c in cells) + (soaked["errors"] if soaked else 0)
    out["zero errors in every cell"] = {"errors": errors, "met": errors == 0}
    return out


def table(cells: list[Cell], cold: dict[str, float]) -> str:
    def ratio(c: Cell, server: str) -> str:
        if server == IN_PROCESS:
            peer = best_in_process(cells, c.rows_per_request)
        elif server == COMPUTE_LIMIT:
            peer = next((p for p in cells if p.server == COMPUTE_LIMIT), None)
        else:
            peer = next(
                (
                    p
                    for p in cells
                    if (p.server, p.rows_per_request, p.concurrency)
                    == (server, c.rows_per_request, c.concurrency)
                ),
                None,
            )
        return f"{c.rows_per_s / peer.rows_per_s:.2f}" if peer else ""

    headers = [
        "server",
        "rows/req",
        "clients",
        "req/s",
        "rows/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "RSS MiB (tree)",
        "worker RSS MiB",
        "vs mlflow serve",
        "vs in-process",
        "vs framework ceiling",
        "vs HTTP ceiling",
        "rows/s vs compute limit",
        "vs bento",
    ]
    rows = [
        [
            c.server,
            c.rows_per_request,
            c.concurrency,
            c.requests_per_s,
            c.rows_per_s,
            c.p50_ms,
            c.p99_ms,
            c.errors,
            c.rss_mib,
            c.worker_rss_mib,
            ratio(c, "mlflow models serve"),
            ratio(c, IN_PROCESS),
            ratio(c, BENTO_CEILING),
            ratio(c, HTTP_CEILING),
            ratio(c, COMPUTE_LIMIT),
            ratio(c, "bento") if c.server == SHADOW else "",
        ]
        for c in cells
    ]
    cold_rows = [[name, seconds] for name, seconds in cold.items()]
    return (
        markdown_table(headers, rows)
        + "\n\n"
        + markdown_table(["server", "cold start s (process start → first 200)"], cold_rows)
    )


FULL = {
    "duration": 10.0,
    "warmup": 3.0,
    "concurrency": "1,8,32",
    "rows": "1,100,1000",
    "train_rows": 20_000,
    "soak_requests": 1_000_000,
    "soak_chunk": 30.0,
}
SMOKE = {
    "duration": 1.0,
    "warmup": 1.0,
    "concurrency": "1,8",
    "rows": "1,10",
    "train_rows": 3_000,
    "soak_requests": 2_000,
    "soak_chunk": 1.0,
}
# The smoke run leaves out the two-worker Bento (the same service, only slower to start).
SMOKE_SKIPS = {"bento (2 workers)"}
# Measured only when named in --servers: what the lean route saves against BentoML's own API.
ON_REQUEST = {API_ROUTE}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, help="Seconds per cell (10; smoke 1).")
    parser.add_argument("--warmup", type=float, help="Seconds before cells (3; smoke 1).")
    parser.add_argument("--concurrency", help="Client connections (1,8,32; smoke 1,8).")
    parser.add_argument("--rows", help="Records per request (1,100,1000; smoke 1,10).")
    parser.add_argument("--train-rows", type=int, help="Training rows (20000; smoke 3000).")
    parser.add_argument(
        "--soak-requests",
        type=int,
        help="Single-record requests sent to the bento server after its cells, its worker's "
        "RSS followed throughout (1000000; smoke 2000; 0: none).",
    )
    parser.add_argument(
        "--soak-chunk",
        type=float,
        help="Seconds per soak wrk run, the worker's RSS read after each (30; smoke 1).",
    )
    parser.add_argument(
        "--servers", help="Comma-separated server names to run (default: all), e.g. bento"
    )
    parser.add_argument("--smoke", action="store_true", help="Tiny run that keeps this working.")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/serving.json"))
    args = parser.parse_args(argv)
    defaults = SMOKE if args.smoke else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.concurrency = [int(c) for c in str(args.concurrency).split(",")]
    args.rows = [int(r) for r in str(args.rows).split(",")]
    return args


def main(argv: list[str] | None = None) -> dict[str, object]:
    args = parse_args(argv)
    wrk = install_program("wrk", ("wrk",))
    with tempfile.TemporaryDirectory(prefix="churnops-bench-") as tmp:
        work = Path(tmp)
        tracking_uri, mlflow = local_mlflow_server(work)
        with mlflow:
            console.log(f"training the champion on {args.train_rows:,} synthetic rows")
            model_uri = register_champion(tracking_uri, args.train_rows)
            records = request_records(max(args.rows))
            cells: list[Cell] = []
            cold: dict[str, float] = {}
            soaked = None
            chosen = set(args.servers.split(",")) if args.servers else None
            skipped = set()
            if chosen is None:
                skipped = ON_REQUEST | (SMOKE_SKIPS if args.smoke else set())
            for server in servers(tracking_uri, model_uri, work):
                if (chosen is not None and server.name not in chosen) or server.name in skipped:
                    continue
                measured, cold[server.name], soaked_here = measure_server(
                    server, wrk, records, args, work
                )
                cells += measured
                soaked = soaked_here or soaked
            cells += in_process(model_uri, tracking_uri, records, args)
            fdatasync_us = fdatasync_latency_us(work)
    imports = import_profile()
    report = {
        "machine": machine(),
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "cells": [asdict(c) for c in cells],
        "cold_start_s": cold,
        "worker_import_s": imports,
        "fdatasync_us": round(fdatasync_us, 1),
        "soak": soaked,
        "targets": verdicts(cells, cold, fdatasync_us, soaked),
    }
    rendered = (
        table(cells, cold)
        + "\n\n"
        + markdown_table(
            [f"worker import ({WORKER_IMPORTS})", "seconds"], [list(i) for i in imports.items()]
        )
    )
    facts = ", ".join(f"{k}: {v}" for k, v in report["machine"].items())
    targets = "\n".join(
        f"- {'met' if v['met'] else 'NOT met'}: {name} {v}" for name, v in report["targets"].items()
    )
    text = f"Machine: {facts}\n\n{rendered}\n\n{soak_text(soaked)}Targets:\n{targets}"
    print(text)
    write_report(args.out, report, text)
    return report


if __name__ == "__main__":
    main()
