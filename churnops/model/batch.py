"""Score a whole customer base with one model version: the weekly retention list.

Rows stream through in chunks (cleaned under the data contract, scored, optionally explained)
and go to a Parquet file, so memory stays bounded by the chunk size whatever the file's size
(the next chunk is read and cleaned in a background thread while one is scored);
only one float per row is kept, to rank everyone at the end. The output is written next to its
destination and moved into place when complete: a bad row anywhere fails the whole run, naming
the file, line and column, and leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from sklearn.pipeline import Pipeline

from churnops.contract import Contract
from churnops.data.cleaning import customers_to_score
from churnops.data.output import output_filesystem
from churnops.data.sources import read_customer_chunks
from churnops.model.reasons import Explainer, top_reasons
from churnops.model.scoring import (
    FrameScorer,
    check_rows,
    features,
    frame_scorer,
    rows_to_frame,
)

CHUNK_ROWS = 100_000
READ_AHEAD = 1  # chunks read and cleaned in the background while the previous one is scored
# Pass one's file is read back once, by us: Arrow's own format, lz4-compressed so a run with
# reasons (repetitive text) does not leave a file many times the output's size meanwhile.
UNRANKED_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")
REASON_COUNT = 3
HISTOGRAM_BINS = 20
TOP_SHOWN = 20  # rows of the ranked list a summary keeps (Dagster metadata, the CLI's table)
PROBABILITY = "churn_probability"
DECISION = "churn"
VERSION = "model_version"
RANK = "rank"
MARGIN = "log_odds"
METADATA_KEY = b"churnops"
_POSITION = "_position"  # input order, the tie-breaker of equal probabilities

Progress = Callable[[int, int], None]  # (rows scored so far, input bytes read so far)
T = TypeVar("T")


@dataclass(frozen=True)
class ScoringModel:
    """One registered version as batch scoring uses it: the fitted pipeline, the decision
    threshold it serves with, and its explainer (needed only to give reasons)."""

    pipeline: Pipeline
    version: str
    threshold: float
    score: FrameScorer  # the pipeline's probabilities, as fast as it allows
    explainer: Explainer | None = None

    @classmethod
    def build(
        cls,
        pipeline: Pipeline,
        version: str,
        threshold: float,
        contract: Contract,
        explainer: Explainer | None = None,
    ) -> ScoringModel:
        checked = rows_to_frame(check_rows(contract), contract)
        return cls(
            pipeline, version, threshold, frame_scorer(pipeline, checked, contract), explainer
        )


@dataclass(frozen=True)
class ScoringSummary:
    """What a scoring run produced, for the CLI, Dagster metadata and MLflow lineage."""

    output: str
    rows: int
    model_version: str
    threshold: float
    predicted_churners: int
    input_fingerprint: str
    seconds: float
    explained: bool
    histogram: np.ndarray  # counts of probabilities in HISTOGRAM_BINS equal bins over [0, 1]
    top: pd.DataFrame  # the TOP_SHOWN highest-ranked rows, as written

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def reason_columns(count: int = REASON_COUNT) -> list[str]:
    names: list[str] = []
    for i in range(1, count + 1):
        names += [f"reason_{i}", f"reason_{i}_feature", f"reason_{i}_log_odds"]
    return names


def readable_columns(frame: pd.DataFrame) -> list[str]:
    """The columns a person reads in a summary table: the reason texts, not their feature names
    and log-odds."""
    return [c for c in frame.columns if not c.endswith(("_feature", "_log_odds"))]


def output_columns(contract: Contract, *, explain: bool, reasons: int = REASON_COUNT) -> list[str]:
    columns = [contract.id_name, PROBABILITY, DECISION, VERSION, RANK]
    return columns + ([MARGIN, *reason_columns(reasons)] if explain else [])


def file_fingerprint(path: str | Path) -> str:
    """sha256 of the file's bytes (16 hex digits): which input a score file came from."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()[:16]


def frames_fingerprint(frames: Iterable[pd.DataFrame]) -> str:
    """Fingerprint of in-memory input (e.g. a generated customer base), chunk by chunk."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update("\x1f".join(map(str, frame.columns)).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def score_file(
    source: str | Path,
    output: str,
    model: ScoringModel,
    contract: Contract,
    *,
    explain: bool = False,
    top: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
    on_progress: Progress | None = None,
) -> ScoringSummary:
    """Score a CSV or Parquet file of customers (see `score_chunks`)."""
    report = on_progress or (lambda _rows, _bytes: None)
    bytes_read = [0]

    def on_bytes(done: int) -> None:
        bytes_read[0] = done

    chunks = read_customer_chunks(source, chunk_rows, on_bytes)
    return score_chunks(
        chunks,
        str(source),
        output,
        model,
        contract,
        input_fingerprint=file_fingerprint(source),
        explain=explain,
        top=top,
        on_progress=lambda rows, _: report(rows, bytes_read[0]),
    )


def score_chunks(
    chunks: Iterable[pd.DataFrame],
    source: str,
    output: str,
    model: ScoringModel,
    contract: Contract,
    *,
    input_fingerprint: str,
    explain: bool = False,
    top: int | None = None,
    on_progress: Progress | None = None,
) -> ScoringSummary:
    """Write `output` (a path, or a URL pyarrow's filesystems open: s3://, gs://, file://) with
    one row per customer (`output_columns`), in input order with `rank` 1 for the highest risk;
    with `top`, only the `top` highest-ranked customers, in rank order. Raw chunks are cleaned
    under `contract` (a target column is ignored) and errors name `source`'s line and column."""
    if explain and model.explainer is None:
        raise ValueError(f"model version {model.version} has no explainer: cannot give reasons")
    if top is not None and top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    started = time.perf_counter()
    typed = _read_ahead(_typed_chunks(chunks, source, contract))
    filesystem, path = output_filesystem(output)
    partial = f"{path}.partial-{uuid.uuid4().hex[:8]}"
    metadata = _file_metadata(model, contract, input_fingerprint, source, explain)
    try:
        if top is None:
            stats = _score_all(typed, partial, filesystem, model, contract, explain, on_progress)
            ranked = _rank_in_place(partial, stats, filesystem, metadata)
        else:
            stats, ranked = _score_top(typed, top, model, contract, explain, on_progress)
            schema = _schema(contract, explain, ranked=True).with_metadata(metadata)
            _write_table(filesystem, partial, ranked, schema)
        filesystem.move(partial, path)
    except BaseException:
        typed.close()  # the background reader stops before the partial files go
        _remove_quietly(filesystem, partial)
        _remove_quietly(filesystem, f"{partial}.unranked")
        raise
    return ScoringSummary(
        output=output,
        rows=stats.rows,
        model_version=model.version,
        threshold=model.threshold,
        predicted_churners=stats.churners,
        input_fingerprint=input_fingerprint,
        seconds=time.perf_counter() - started,
        explained=explain,
        histogram=stats.histogram,
        top=ranked,
    )


@dataclass
class _Stats:
    rows: int = 0
    churners: int = 0
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(HISTOGRAM_BINS, np.int64))
    probabilities: list[np.ndarray] = field(default_factory=list)

    def add(self, probabilities: np.ndarray, threshold: float) -> None:
        self.rows += len(probabilities)
        self.churners += int((probabilities >= threshold).sum())
        counts, _ = np.histogram(probabilities, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
        self.histogram += counts


def _typed_chunks(
    chunks: Iterable[pd.DataFrame], source: str, contract: Contract
) -> Iterator[pd.DataFrame]:
    first_row = 0
    for raw in chunks:
        yield customers_to_score(raw, source, contract, first_row=first_row)
        first_row += len(raw)


_DONE = object()  # the end of a read-ahead queue


@dataclass(frozen=True)
class _Failure:
    """What the read-ahead producer raised, handed to the consumer to raise."""

    error: BaseException


def _read_ahead(items: Iterator[T], depth: int = READ_AHEAD) -> Generator[T, None, None]:
    """`items`, produced in a background thread up to `depth` ahead of the consumer, so reading
    and cleaning chunk i + 1 run while chunk i is scored and written (pyarrow's reader and the
    estimators' compiled loops release the GIL; on one core this costs nothing but a thread).
    An error is raised to the consumer at the item it replaces; a consumer that stops early
    stops the producer (after its current item) before this generator returns."""
    handoff: queue.Queue = queue.Queue(maxsize=max(depth, 1))
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
        except BaseException as error:  # raised again in the consumer's thread
            offer(_Failure(error))
            return
        offer(_DONE)

    producer = threading.Thread(target=produce, name="churnops-read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        producer.join()
        close = getattr(items, "close", None)
        if close is not None:
            close()


def _scored(frame: pd.DataFrame, model: ScoringModel, contract: Contract) -> pd.DataFrame:
    """`_scored_table` as a frame (the top-N path keeps rows across chunks in pandas)."""
    schema = _schema(contract, explain=False, ranked=False)
    return _scored_table(frame, model, contract, schema).to_pandas()


def _scored_table(
    frame: pd.DataFrame, model: ScoringModel, contract: Contract, schema: pa.Schema
) -> pa.Table:
    """`_scored` as Arrow columns built directly (the decision by index, the version repeated):
    a pandas frame of Python strings converted to Arrow cost several times more per chunk."""
    probabilities = model.score(features(frame, contract))
    target = contract.target
    labels = pa.array([target.negative_label, target.positive_label], pa.string())
    columns = [
        pa.array(frame[contract.id_name].to_numpy(dtype=object), pa.string()),
        pa.array(probabilities, pa.float64()),
        labels.take((probabilities >= model.threshold).astype(np.int8)),
        pa.repeat(pa.scalar(model.version, pa.string()), len(frame)),
    ]
    return pa.Table.from_arrays(columns, schema=pa.schema(list(schema)[:4]))


def _reasons(frame: pd.DataFrame, model: ScoringModel, contract: Contract) -> dict[str, object]:
    """The margin and the `reason_columns` of each row of `frame`, as columns of values."""
    explainer = model.explainer
    assert explainer is not None  # noqa: S101  (checked by score_chunks)
    explanation = explainer.explain(features(frame, contract))
    table = {name: [None] * len(frame) for name in reason_columns()}
    for row, reasons in enumerate(top_reasons(explanation, frame, REASON_COUNT)):
        for i, reason in enumerate(reasons, start=1):
            table[f"reason_{i}"][row] = reason.text
            table[f"reason_{i}_feature"][row] = reason.feature
            table[f"reason_{i}_log_odds"][row] = float(reason.contribution)
    return {MARGIN: explanation.margin, **table}


def _with_reasons(
    scored: pd.DataFrame, frame: pd.DataFrame, model: ScoringModel, contract: Contract
) -> pd.DataFrame:
    for name, values in _reasons(frame, model, contract).items():
        if name == MARGIN:
            scored[name] = values
        else:
            kind = "float64" if name.endswith("_log_odds") else object
            scored[name] = pd.Series(values, dtype=kind)
    return scored


def _score_all(
    typed: Iterator[pd.DataFrame],
    partial: str,
    filesystem: pafs.FileSystem,
    model: ScoringModel,
    contract: Contract,
    explain: bool,
    on_progress: Progress | None,
) -> _Stats:
    """Pass one: every row scored (and explained) into an unranked file beside the output, an
    Arrow stream: cheap to write and to read back, so the only Parquet encoding is pass two's."""
    stats = _Stats()
    schema = _schema(contract, explain, ranked=False)
    with (
        filesystem.open_output_stream(f"{partial}.unranked") as sink,
        pa.ipc.new_stream(sink, schema, options=UNRANKED_OPTIONS) as writer,
    ):
        for frame in typed:
            table = _scored_table(frame, model, contract, schema)
            if explain:
                for name, values in _reasons(frame, model, contract).items():
                    table = table.append_column(name, pa.array(values, schema.field(name).type))
            probabilities = table.column(PROBABILITY).to_numpy()
            stats.add(probabilities, model.threshold)
            stats.probabilities.append(probabilities)
            writer.write_table(table)
            if on_progress is not None:
                on_progress(stats.rows, 0)
    return stats


def ranks(probabilities: np.ndarray) -> np.ndarray:
    """1 for the highest probability; ties keep input order."""
    order = np.argsort(-probabilities, kind="stable")
    rank = np.empty(len(probabilities), dtype=np.int64)
    rank[order] = np.arange(1, len(probabilities) + 1)
    return rank


def _rank_in_place(
    partial: str, stats: _Stats, filesystem: pafs.FileSystem, metadata: dict[bytes, bytes]
) -> pd.DataFrame:
    """Pass two: the unranked file copied batch by batch with its `rank` column added; returns
    the top rows in rank order."""
    probabilities = (
        np.concatenate(stats.probabilities) if stats.probabilities else np.empty(0, np.float64)
    )
    stats.probabilities.clear()
    rank = ranks(probabilities)
    unranked = f"{partial}.unranked"
    with filesystem.open_input_stream(unranked) as source:
        reader = pa.ipc.open_stream(source)
        schema = _ranked_schema(reader.schema, metadata)
        top_rows: list[pd.DataFrame] = []
        done = 0
        with (
            filesystem.open_output_stream(partial) as sink,
            pq.ParquetWriter(sink, schema, use_dictionary=_repetitive(schema)) as writer,
        ):
            for batch in reader:
                batch_rank = rank[done : done + batch.num_rows]
                done += batch.num_rows
                table = pa.Table.from_batches([batch])
                table = table.add_column(4, RANK, pa.array(batch_rank, pa.int64()))
                writer.write_table(table)
                shown = batch_rank <= TOP_SHOWN
                if shown.any():
                    top_rows.append(table.filter(pa.array(shown)).to_pandas())
    filesystem.delete_file(unranked)
    if not top_rows:
        return pd.DataFrame(columns=schema.names)
    return pd.concat(top_rows).sort_values(RANK).reset_index(drop=True)


def _score_top(
    typed: Iterator[pd.DataFrame],
    top: int,
    model: ScoringModel,
    contract: Contract,
    explain: bool,
    on_progress: Progress | None,
) -> tuple[_Stats, pd.DataFrame]:
    """Only the `top` highest-risk customers are kept across chunks (with their features), and
    only they are explained, at the end."""
    stats = _Stats()
    best: pd.DataFrame | None = None
    position = 0
    order = {"by": [PROBABILITY, _POSITION], "ascending": [False, True]}
    for frame in typed:
        scored = _scored(frame, model, contract)
        probabilities = scored[PROBABILITY].to_numpy()
        stats.add(probabilities, model.threshold)
        candidates = pd.concat([frame, scored.drop(columns=[contract.id_name])], axis=1).assign(
            **{_POSITION: np.arange(position, position + len(frame))}
        )
        position += len(frame)
        if best is not None and len(best) == top:
            candidates = candidates[candidates[PROBABILITY] >= best[PROBABILITY].iloc[-1]]
        merged = candidates if best is None else pd.concat([best, candidates])
        best = merged.sort_values(**order, kind="stable").head(top).reset_index(drop=True)
        if on_progress is not None:
            on_progress(stats.rows, 0)
    if best is None:
        best = pd.DataFrame(columns=[contract.id_name, *contract.feature_names, PROBABILITY])
    result = best.reindex(columns=[contract.id_name, PROBABILITY, DECISION, VERSION])
    result.insert(4, RANK, np.arange(1, len(result) + 1, dtype=np.int64))
    if explain and len(best):
        result = _with_reasons(result, best, model, contract)
    return stats, result


def _schema(contract: Contract, explain: bool, *, ranked: bool) -> pa.Schema:
    fields = [
        pa.field(contract.id_name, pa.string()),
        pa.field(PROBABILITY, pa.float64()),
        pa.field(DECISION, pa.string()),
        pa.field(VERSION, pa.string()),
    ]
    if ranked:
        fields.append(pa.field(RANK, pa.int64()))
    if explain:
        fields.append(pa.field(MARGIN, pa.float64()))
        for name in reason_columns():
            kind = pa.float64() if name.endswith("_log_odds") else pa.string()
            fields.append(pa.field(name, kind))
    return pa.schema(fields)


def _ranked_schema(unranked: pa.Schema, metadata: dict[bytes, bytes]) -> pa.Schema:
    names = unranked.names
    fields = [unranked.field(name) for name in names[:4]]
    fields.append(pa.field(RANK, pa.int64()))
    fields += [unranked.field(name) for name in names[4:]]
    return pa.schema(fields, metadata=metadata)


def _repetitive(schema: pa.Schema) -> list[str]:
    """The columns worth dictionary-encoding: text other than the key (a decision, a version,
    reasons). Keys and numbers are nearly all distinct; trying a dictionary on them first only
    costs time."""
    key = schema.names[0]
    return [f.name for f in schema if f.name != key and pa.types.is_string(f.type)]


def _file_metadata(
    model: ScoringModel, contract: Contract, fingerprint: str, source: str, explain: bool
) -> dict[bytes, bytes]:
    """Lineage inside the file itself: which version, threshold, contract and input."""
    facts = {
        "model_version": model.version,
        "threshold": model.threshold,
        "contract": contract.dataset,
        "contract_fingerprint": contract.fingerprint,
        "input": source,
        "input_fingerprint": fingerprint,
        "explained": explain,
        "explainer": model.explainer.method if explain and model.explainer else None,
        "scored_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return {METADATA_KEY: json.dumps(facts).encode()}


def read_metadata(path: str) -> dict[str, object]:
    """The lineage facts a score file carries (see `_file_metadata`)."""
    filesystem, location = output_filesystem(path)
    with filesystem.open_input_file(location) as handle:
        schema = pq.ParquetFile(handle).schema_arrow
    return json.loads((schema.metadata or {}).get(METADATA_KEY, b"{}"))


def _write_table(
    filesystem: pafs.FileSystem,
    path: str,
    frame: pd.DataFrame,
    schema: pa.Schema,
) -> None:
    table = pa.Table.from_pandas(frame.loc[:, schema.names], schema, preserve_index=False)
    with filesystem.open_output_stream(path) as sink:
        pq.write_table(table, sink)


def _remove_quietly(filesystem: pafs.FileSystem, path: str) -> None:
    try:
        filesystem.delete_file(path)
    except (FileNotFoundError, OSError):
        return
