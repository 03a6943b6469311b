"""What a serving worker runs: the champion follower, the micro-batcher, the prediction log and
the prediction store, and the scoring they share.

Kept apart from `serving/service.py` because BentoML's supervisor process imports the service
module only to read its configuration: everything heavy (scikit-learn, pandas, MLflow,
SQLAlchemy) is imported here, by the worker alone (benchmarks/serving.py measures the start).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import NamedTuple

import anyio.to_thread
from sqlalchemy.exc import SQLAlchemyError

from churnops.contract import Contract
from churnops.contract.files import dump_contract
from churnops.model.reasons import Reason, top_reasons
from churnops.model.scoring import rows_to_frame
from churnops.monitoring import prediction_store
from churnops.records import customer_rows
from churnops.settings import Settings
from registry.interface import CHALLENGER
from registry.mlflow_registry import MlflowModelRegistry
from serving.batcher import MicroBatcher, one_openmp_thread
from serving.champion import ChampionFollower, LoadedModel, alias_resolver, pinned_resolver
from serving.errors import Unavailable
from serving.group_commit import GroupCommit
from serving.journal import JournalFull, PredictionJournal
from serving.prediction_log import PredictionLogger, ProcessShipping
from serving.rollout import SHADOW_ROW, answered_by_challenger
from serving.schemas import MAX_BATCH

log = logging.getLogger(__name__)

REASON_COUNT = 3


class Scored(NamedTuple):
    """One scored customer: its request and customer ids, contract values, probability, the
    answer at the model's threshold, the model that scored it and, when asked for, reasons."""

    request_id: str
    customer_id: str | None
    row: list[object]
    score: float
    answer: str
    model: LoadedModel
    reasons: list[Reason] | None = None
    shadow: Scored | None = None  # the challenger's score of the same row, in shadow mode


def request_ids(count: int) -> list[str]:
    """One id per scored row: the request's own id, suffixed by position in a batch."""
    request = _request_id()
    return [f"{request}-{i}" for i in range(count)] if count > 1 else [request]


def _request_id() -> str:
    """32 hex characters, time first: ids of logged predictions arrive in order, so the store's
    primary-key index grows at its end instead of splitting pages all over (random ids made
    each logged row over twice as expensive once the table held 300k rows)."""
    return f"{time.time_ns():016x}{secrets.token_hex(8)}"


class ServingRuntime:
    """One worker's model, log and store. `customer ids` are the ids the client sent (or None);
    rows are contract values in contract order (`records.records_to_rows`)."""

    def __init__(self, settings: Settings, contract: Contract) -> None:
        # Fail registry calls fast: the poller retries on its own schedule, and a slow call
        # must never hold up start-up.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        self.contract = contract
        registry = MlflowModelRegistry(
            settings.tracking_uri, settings.model_name, settings.experiment
        )
        if settings.model_uri:
            resolve = pinned_resolver(
                settings.model_uri,
                registry,
                lambda name: MlflowModelRegistry(settings.tracking_uri, name, settings.experiment),
            )
        else:
            resolve = alias_resolver(registry)
        self.follower = ChampionFollower(
            resolve,
            registry.load_model,
            settings.alias_poll_seconds,
            contract,
            load_reference=registry.load_reference,
        )
        self.rollout = settings.rollout
        self.canary_share = settings.canary_share
        # `@challenger`, followed only while a rollout runs (off costs nothing).
        self.challenger = (
            ChampionFollower(
                alias_resolver(registry, CHALLENGER),
                registry.load_model,
                settings.alias_poll_seconds,
                contract,
                load_reference=registry.load_reference,
                alias=CHALLENGER,
            )
            if settings.rollout != "off"
            else None
        )
        # No I/O here: a store that is down at start must not stop serving (rows are buffered).
        self.store = prediction_store.connect(settings.prediction_store)
        self.logger = (
            _prediction_logger(settings, contract) if settings.prediction_logging else None
        )
        self.commit: GroupCommit[Scored] | None = (
            GroupCommit(self._append_to_log) if self.logger is not None else None
        )
        # Concurrent requests share model calls (see serving/batcher.py), journaled by the
        # model thread as it makes them.
        self.batcher: MicroBatcher = MicroBatcher(
            self._score_rows,
            max_rows=MAX_BATCH,
            thread_setup=one_openmp_thread,
            settle=self._journal_call if self.commit is not None else None,
        )
        self.follower.start()
        if self.challenger is not None:
            self.challenger.start()

    def ready(self) -> bool:
        return self.follower.current is not None

    def close(self) -> None:
        """Graceful stop: every answered prediction reaches the store before exit."""
        self.follower.stop()
        if self.challenger is not None:
            self.challenger.stop()
        if self.commit is not None:
            self.commit.close()
        if self.logger is not None:
            self.logger.close()

    def status(self) -> dict[str, object]:
        status = self.follower.status()
        status["batching"] = self.batcher.stats()
        if self.challenger is not None:
            status["rollout"] = {
                "mode": self.rollout,
                "canary_share": self.canary_share if self.rollout == "canary" else None,
                "challenger": self.challenger.status(),
            }
        if self.logger is not None and self.commit is not None:
            status["prediction_log"] = {**self.logger.stats(), "commits": self.commit.stats()}
        return status

    async def score(
        self, customers: Sequence[tuple[str | None, list[object]]], explain: bool
    ) -> list[Scored]:
        """Score (customer id, row) pairs in one call, journaled before they are returned."""
        items = list(zip(request_ids(len(customers)), customers, strict=True))
        try:
            if not explain:
                return await self.batcher.submit(items)  # journaled by the model thread
            scored = await anyio.to_thread.run_sync(self._explained_rows, items)
            await self._journal(scored)
        except JournalFull as exc:  # never answer what cannot be kept
            raise Unavailable(str(exc)) from exc
        return scored

    def rows(self, records: Sequence[object]) -> list[tuple[str | None, list[object]]]:
        """(customer id, row) pairs of validated request records."""
        return customer_rows(records, self.contract)  # type: ignore[arg-type]

    def _score_rows(self, items: list[tuple[str, tuple[str | None, list[object]]]]) -> list[Scored]:
        """(request id, (customer id, row)) pairs scored in one call per model."""
        return self._routed(items, self._plain)

    def _explained_rows(self, items: list) -> list[Scored]:
        """As `_score_rows`, with reason codes (off the micro-batcher: only explaining
        requests pay for them)."""
        return self._routed(items, self._explained)

    def _routed(
        self, items: list, score: Callable[[list, LoadedModel], list[Scored]]
    ) -> list[Scored]:
        """The champion answers, unless a rollout gives the challenger a part: in shadow mode it
        scores the same rows too (its scores are logged, never answered); in canary mode it
        answers the customers whose id hashes into the share."""
        champion = self._loaded()
        challenger = self._challenger(champion)
        if challenger is None:
            return score(items, champion)
        if self.rollout == "shadow":
            return self._shadowed(score(items, champion), items, challenger)
        picks = [answered_by_challenger(c, row, self.canary_share) for _, (c, row) in items]
        chosen = [item for item, pick in zip(items, picks, strict=True) if pick]
        others = [item for item, pick in zip(items, picks, strict=True) if not pick]
        by_challenger = iter(score(chosen, challenger) if chosen else [])
        by_champion = iter(score(others, champion) if others else [])
        return [next(by_challenger) if pick else next(by_champion) for pick in picks]

    def _challenger(self, champion: LoadedModel) -> LoadedModel | None:
        """The loaded challenger when a rollout runs and it is not the champion itself."""
        loaded = self.challenger.current if self.challenger is not None else None
        return loaded if loaded is not None and loaded.version != champion.version else None

    def _shadowed(
        self, answered: list[Scored], items: list, challenger: LoadedModel
    ) -> list[Scored]:
        """The champion's answers carrying the challenger's scores; a challenger that fails
        to score costs its log rows, never an answer."""
        try:
            shadow = self._plain(items, challenger)
        except Exception as exc:
            log.warning("challenger %s failed to score: %s", challenger.version, exc)
            return answered
        return [a._replace(shadow=s) for a, s in zip(answered, shadow, strict=True)]

    def _plain(self, items: list, loaded: LoadedModel) -> list[Scored]:
        rows = [row for _, (_, row) in items]
        return self._scored(items, loaded.score(rows), loaded)

    def _explained(self, items: list, loaded: LoadedModel) -> list[Scored]:
        if loaded.explainer is None:
            raise Unavailable(
                f"reason codes are unavailable for model version {loaded.version}: "
                f"{loaded.explain_error}"
            )
        rows = [row for _, (_, row) in items]
        frame = rows_to_frame(rows, self.contract)
        reasons = top_reasons(loaded.explainer.explain(frame), frame, REASON_COUNT)
        return self._scored(items, loaded.score(rows), loaded, reasons)

    def _scored(self, items, scores, loaded: LoadedModel, reasons=None) -> list[Scored]:
        """Everything the answer and the log need, decided once (in the model-call thread)."""
        positive = self.contract.target.positive_label
        negative = self.contract.target.negative_label
        return [
            Scored(
                request_id,
                customer_id,
                row,
                float(score),
                positive if score >= loaded.threshold else negative,
                loaded,
                reasons[i] if reasons is not None else None,
            )
            for i, ((request_id, (customer_id, row)), score) in enumerate(
                zip(items, scores, strict=True)
            )
        ]

    async def _journal(self, scored: list[Scored]) -> None:
        """On disk before the answer leaves (shared with every request syncing meanwhile)."""
        if self.commit is not None:
            await self.commit.commit(scored)

    def _journal_call(self, scored: Sequence[Scored], others_waiting: bool) -> Future[None] | None:
        """A model call's predictions, journaled from the model thread: synced right there
        when no other request waits for it, else by the journal thread while it makes the
        next call."""
        return self.commit.submit(scored, inline=not others_waiting)

    def _append_to_log(self, scored: list[Scored]) -> None:
        """The journal's rows of `scored` (and the challenger's, in shadow mode), on disk."""
        rows = log_rows(scored)
        if self.rollout == "shadow":
            rows += shadow_log_rows(scored)
        self.logger.log(rows)

    def _loaded(self) -> LoadedModel:
        loaded = self.follower.current
        if loaded is None:
            raise Unavailable("no champion model loaded yet")
        return loaded

    def store_feedback(self, labels: list[dict]) -> tuple[int, list[int]]:
        """(labels stored, indices of labels naming no logged prediction); nothing is stored
        unless every label names one."""
        try:
            if unknown := self._unknown_labels(labels):
                return 0, unknown
            return prediction_store.write_feedback(self.store, self.contract, labels), []
        except SQLAlchemyError as exc:
            raise Unavailable("prediction store unavailable") from exc
        except prediction_store.StoreSchemaError as exc:  # made under another contract
            raise Unavailable(str(exc)) from exc

    def _unknown_labels(self, labels: list[dict]) -> list[int]:
        """Labels naming no logged prediction; predictions answered a moment ago may still be
        in the journal, so it is shipped first and the labels checked again."""
        unknown = prediction_store.unknown_feedback(self.store, self.contract, labels)
        if unknown and self.logger is not None and self.logger.flush(timeout=5.0):
            unknown = prediction_store.unknown_feedback(self.store, self.contract, labels)
        return unknown


def _prediction_logger(settings: Settings, contract: Contract) -> PredictionLogger:
    """The journal in this worker; its shipper a process of its own (serving/shipper.py)."""
    journal = PredictionJournal(settings.journal_dir, settings.journal_max_bytes)
    shipping = ProcessShipping(journal, settings.prediction_store, dump_contract(contract))
    return PredictionLogger(journal, shipping)


def log_rows(scored: Sequence[Scored]) -> list[tuple]:
    """Rows in `prediction_store.prediction_columns(contract)` order: plain tuples, cheap to
    build on the request path (checked against the store in
    tests/unit/serving/test_prediction_log.py)."""
    now = time.time()
    return [
        (
            item.request_id,
            now,
            item.model.version,
            item.customer_id,
            *item.row,
            item.score,
            item.answer,
        )
        for item in scored
    ]


def shadow_log_rows(scored: Sequence[Scored]) -> list[tuple]:
    """The challenger's scores as journal rows: `SHADOW_ROW` and then
    `prediction_store.SHADOW_COLUMNS` (sent to their own table by `rollout.split_writer`)."""
    now = time.time()
    return [
        (SHADOW_ROW, item.request_id, shadow.model.version, now, shadow.score, shadow.answer)
        for item in scored
        if (shadow := item.shadow) is not None
    ]
