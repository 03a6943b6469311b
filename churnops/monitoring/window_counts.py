"""A window of the prediction store counted into the reference's bins by SQL, so a monitor
reads O(bins) rows however much traffic the window holds (see `churnops.monitoring.binned`).

PostgreSQL counts every field in one scan (GROUPING SETS, `width_bucket` for numeric bins);
SQLite, the single-machine default, counts field by field with a CASE tree per numeric field.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import (
    Engine,
    Float,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    null,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import ColumnElement, Select

from churnops.contract import Contract
from churnops.monitoring.binned import MISSING, QUALITY_BINS, VALUE_PREFIX, Counts, FieldBins
from churnops.monitoring.prediction_store import (
    SCORE_COLUMN,
    StoreSchema,
    ensure_tables,
    store_schema,
)

LABEL = "label"


def _window(schema: StoreSchema, since_ts: float | None, until_ts: float | None) -> Any:
    ts = schema.predictions.c.ts
    bounds = []
    if since_ts is not None:
        bounds.append(ts > since_ts)
    if until_ts is not None:
        bounds.append(ts <= until_ts)
    return and_(True, *bounds)


def _case_tree(column: Any, edges: tuple[float, ...], offset: int = 0) -> Any:
    """Bin = how many `edges` are <= column, by binary search: log2(bins) comparisons a row
    instead of one per edge."""
    if not edges:
        return literal(offset)
    middle = len(edges) // 2
    return case(
        (column < edges[middle], _case_tree(column, edges[:middle], offset)),
        else_=_case_tree(column, edges[middle + 1 :], offset + middle + 1),
    )


def _numeric_bin(column: Any, edges: tuple[float, ...], dialect: str) -> Any:
    if dialect == "postgresql" and edges:
        thresholds = bindparam(
            f"edges_{column.name}", list(edges), type_=postgresql.ARRAY(Float, as_tuple=True)
        )
        return func.width_bucket(cast(column, postgresql.DOUBLE_PRECISION), thresholds)
    return _case_tree(column, edges)


def bin_expression(column: Any, bins: FieldBins, dialect: str) -> ColumnElement:
    """The SQL bin of `column` as `binned.count_frame` bins it in Python; the key is text."""
    if bins.kind == "open":
        return func.coalesce(literal(VALUE_PREFIX) + column, literal(MISSING))
    if bins.kind == "numeric":
        index = _numeric_bin(column, bins.edges, dialect)
    elif bins.boolean:
        index = cast(column, Integer)
    else:
        other = len(bins.levels)
        index = case({level: i for i, level in enumerate(bins.levels)}, value=column, else_=other)
    binned = case((column.is_(None), literal(int(MISSING))), else_=index)
    return cast(binned, String)


def count_window(
    engine: Engine,
    contract: Contract,
    fields: tuple[FieldBins, ...],
    since_ts: float | None,
    until_ts: float | None,
) -> dict[str, Counts]:
    """Counts of the predictions with since_ts < ts <= until_ts in `fields`' bins."""
    ensure_tables(engine, contract)
    schema = store_schema(contract)
    dialect = engine.dialect.name
    keys = [
        bin_expression(schema.predictions.c[bins.name], bins, dialect).label(f"b{i}")
        for i, bins in enumerate(fields)
    ]
    where = _window(schema, since_ts, until_ts)
    if dialect == "postgresql":
        query = _grouping_sets(schema, keys, where)
    else:
        query = _union_of_groups(schema, keys, where)
    counts: dict[str, Counts] = {bins.name: {} for bins in fields}
    with engine.connect() as connection:
        for field, key, rows in connection.execute(query):
            counts[fields[int(field)].name][str(key)] = int(rows)
    return counts


def _grouping_sets(schema: StoreSchema, keys: list[Any], where: Any) -> Select:
    """One scan: every field's bins grouped at once; each result row has one key set."""
    binned = select(*keys).where(where).subquery()
    columns = [binned.c[key.name] for key in keys]
    grouped = (
        select(*columns, func.count().label("rows"))
        .group_by(func.grouping_sets(*(tuple_(column) for column in columns)))
        .subquery()
    )
    field = case(
        *((grouped.c[key.name].is_not(None), i) for i, key in enumerate(keys)), else_=null()
    )
    key = func.coalesce(*(grouped.c[k.name] for k in keys))
    return select(field, key, grouped.c.rows)


def _union_of_groups(schema: StoreSchema, keys: list[Any], where: Any) -> Any:
    parts = []
    for i, key in enumerate(keys):
        binned = select(key.label("k")).where(where).subquery()
        parts.append(select(literal(i), binned.c.k, func.count()).group_by(binned.c.k))
    return union_all(*parts)


def _label_sources(schema: StoreSchema) -> tuple[Any, Any]:
    """Each prediction's label: the latest sent for its request id, else the latest for its
    customer id (as `read_predictions` joins them)."""
    feedback, id_name = schema.feedback, schema.contract.id_name
    target = feedback.c[schema.contract.target.name]
    latest_by_request = (
        select(func.max(feedback.c.id))
        .where(feedback.c.request_id.is_not(None))
        .group_by(feedback.c.request_id)
    )
    by_request = (
        select(feedback.c.request_id, target.label("request_label"))
        .where(feedback.c.id.in_(latest_by_request))
        .subquery("by_request")
    )
    latest_by_customer = (
        select(func.max(feedback.c.id))
        .where(feedback.c[id_name].is_not(None))
        .group_by(feedback.c[id_name])
    )
    by_customer = (
        select(feedback.c[id_name].label("customer"), target.label("customer_label"))
        .where(feedback.c.id.in_(latest_by_customer))
        .subquery("by_customer")
    )
    return by_request, by_customer


def labelled_select(schema: StoreSchema, columns: list[Any]) -> Select:
    """`columns` of the predictions with their label as `LABEL`."""
    predictions = schema.predictions
    by_request, by_customer = _label_sources(schema)
    label = func.coalesce(by_request.c.request_label, by_customer.c.customer_label)
    return (
        select(*columns, label.label(LABEL))
        .select_from(predictions)
        .outerjoin(by_request, by_request.c.request_id == predictions.c.request_id)
        .outerjoin(by_customer, by_customer.c.customer == predictions.c[schema.contract.id_name])
    )


def _quality_bin(score: Any, dialect: str) -> Any:
    scaled = score * QUALITY_BINS
    if dialect == "sqlite":  # CAST truncates toward zero there; scores are >= 0
        return cast(scaled, Integer)
    return cast(func.floor(scaled), Integer)


def quality_bins(
    engine: Engine, contract: Contract, since_ts: float | None, until_ts: float | None
) -> pd.DataFrame:
    """Labelled predictions of the window by (model_version, label, score bin): `rows`,
    `sum_p`, `sum_p2` (what `binned.quality_from_bins` needs)."""
    ensure_tables(engine, contract)
    schema = store_schema(contract)
    predictions = schema.predictions
    score = predictions.c[SCORE_COLUMN]
    labelled = (
        labelled_select(
            schema,
            [
                predictions.c.model_version,
                _quality_bin(score, engine.dialect.name).label("bin"),
                score.label("p"),
            ],
        )
        .where(_window(schema, since_ts, until_ts))
        .subquery()
    )
    query = (
        select(
            labelled.c.model_version,
            labelled.c[LABEL].label("label"),
            labelled.c.bin,
            func.count().label("rows"),
            func.sum(labelled.c.p).label("sum_p"),
            func.sum(labelled.c.p * labelled.c.p).label("sum_p2"),
        )
        .where(labelled.c[LABEL].is_not(None))
        .group_by(labelled.c.model_version, labelled.c[LABEL], labelled.c.bin)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    frame = pd.DataFrame(rows, columns=["model_version", "label", "bin", "rows", "sum_p", "sum_p2"])
    return frame.astype({"bin": int, "rows": float, "sum_p": float, "sum_p2": float})


def last_logged(
    engine: Engine, contract: Contract, since_ts: float | None, until_ts: float | None = None
) -> float | None:
    """The time of the latest prediction after `since_ts` (an index lookup), or None."""
    ensure_tables(engine, contract)
    schema = store_schema(contract)
    query = select(func.max(schema.predictions.c.ts)).where(_window(schema, since_ts, until_ts))
    with engine.connect() as connection:
        latest = connection.execute(query).scalar_one_or_none()
    return None if latest is None else float(latest)
