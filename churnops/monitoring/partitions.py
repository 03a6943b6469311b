"""The prediction log on PostgreSQL: one partition per UTC day (declarative partitioning by
range of `ts`), created ahead, dropped past the retention; SQLite keeps one table.

A day's partition is created `PARTITIONS_AHEAD` days before it starts; a row whose day has no
partition yet (a server running for weeks without maintenance, a skewed clock) lands in the
DEFAULT partition, and is moved into its day's partition when that is created, so no write is
ever refused. The primary key is (request_id, ts), as PostgreSQL requires the partition key in
it: a row shipped twice carries the same time, so it is still stored once.

A store created before partitioning (one plain table) keeps working as it is; `maintain`
migrates it in one transaction (rename, create the partitioned table, copy, drop), so either
every row is in the new table or nothing changed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Column, Connection, Engine, MetaData, Table, text
from sqlalchemy.schema import CreateIndex, CreateTable

PREDICTIONS = "predictions"
DAY_SECONDS = 86_400
PARTITIONS_AHEAD = 7
DEFAULT_PARTITION = f"{PREDICTIONS}_default"
UNPARTITIONED = f"{PREDICTIONS}_unpartitioned"
# pg_advisory_xact_lock key: serialises partition DDL between replicas and the maintenance job.
_LOCK_KEY = 0x6368_7572_6E6F_7073 & 0x7FFF_FFFF_FFFF_FFFF


def partition_name(day: dt.date) -> str:
    return f"{PREDICTIONS}_{day:%Y%m%d}"


def day_start(day: dt.date) -> float:
    return float(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def day_of(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.UTC).date()


def partitioned_table(predictions: Table) -> Table:
    """The predictions table as PostgreSQL creates it: partitioned by `ts`, keyed by
    (request_id, ts)."""
    columns = []
    for column in predictions.columns:
        copy = Column(
            column.name,
            column.type,
            nullable=column.nullable and column.name not in ("request_id", "ts"),
            primary_key=column.name in ("request_id", "ts"),
            index=column.index,
        )
        columns.append(copy)
    return Table(PREDICTIONS, MetaData(), *columns, postgresql_partition_by="RANGE (ts)")


def table_kind(connection: Connection, name: str = PREDICTIONS) -> str | None:
    """'p' partitioned, 'r' plain table, None when missing (pg_class.relkind)."""
    query = text(
        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relname = :name AND n.nspname = current_schema()"
    )
    kind = connection.execute(query, {"name": name}).scalar_one_or_none()
    return None if kind is None else str(kind)


def lock(connection: Connection) -> None:
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})


def create_partitioned(connection: Connection, predictions: Table, today: dt.date) -> None:
    """The partitioned table, its DEFAULT partition and the days around `today`."""
    table = partitioned_table(predictions)
    connection.execute(CreateTable(table))
    for index in table.indexes:
        connection.execute(CreateIndex(index))
    connection.execute(text(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {PREDICTIONS} DEFAULT"))
    ensure_days(connection, today - dt.timedelta(days=1), today + dt.timedelta(PARTITIONS_AHEAD))


def existing_days(connection: Connection) -> set[dt.date]:
    query = text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :parent"
    )
    names = connection.execute(query, {"parent": PREDICTIONS}).scalars()
    days = set()
    for name in names:
        suffix = name.removeprefix(f"{PREDICTIONS}_")
        if suffix.isdigit() and len(suffix) == 8:
            days.add(dt.datetime.strptime(suffix, "%Y%m%d").date())
    return days


def ensure_days(connection: Connection, first: dt.date, last: dt.date) -> list[dt.date]:
    """Create the missing day partitions from `first` to `last`, moving any of their rows out
    of the DEFAULT partition (in the caller's transaction); the days created."""
    have = existing_days(connection)
    created = []
    day = first
    while day <= last:
        if day not in have:
            _create_day(connection, day)
            created.append(day)
        day += dt.timedelta(days=1)
    return created


def _create_day(connection: Connection, day: dt.date) -> None:
    start, end = day_start(day), day_start(day) + DAY_SECONDS
    bounds = {"start": start, "end": end}
    stray = f"stray_{day:%Y%m%d}"
    move = (
        f"CREATE TEMP TABLE {stray} ON COMMIT DROP AS WITH moved AS (DELETE FROM "  # noqa: S608
        f"{DEFAULT_PARTITION} WHERE ts >= :start AND ts < :end RETURNING *) SELECT * FROM moved"
    )
    connection.execute(text(move), bounds)
    connection.execute(
        text(
            f"CREATE TABLE {partition_name(day)} PARTITION OF {PREDICTIONS} "
            f"FOR VALUES FROM ({start!r}) TO ({end!r})"
        )
    )
    connection.execute(text(f"INSERT INTO {PREDICTIONS} SELECT * FROM {stray}"))  # noqa: S608


@dataclass(frozen=True)
class Maintenance:
    """What one `maintain` did."""

    migrated_rows: int | None  # rows copied from a plain table, None when none was migrated
    created: list[dt.date]
    dropped: list[dt.date]
    default_rows_dropped: int


def maintain(
    engine: Engine, predictions: Table, today: dt.date, retention_days: int
) -> Maintenance | None:
    """Migrate a plain table, create the days up to `PARTITIONS_AHEAD` ahead, drop the days
    (and DEFAULT rows) older than `retention_days` (0 keeps everything). None on SQLite."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.begin() as connection:
        lock(connection)
        kind = table_kind(connection)
        migrated = None
        if kind is None:
            create_partitioned(connection, predictions, today)
        elif kind == "r":
            migrated = _migrate(connection, predictions, today)
        created = ensure_days(connection, today, today + dt.timedelta(PARTITIONS_AHEAD))
        dropped, default_dropped = [], 0
        if retention_days > 0:
            oldest = today - dt.timedelta(days=retention_days)
            for day in sorted(existing_days(connection)):
                if day < oldest:
                    connection.execute(text(f"DROP TABLE {partition_name(day)}"))
                    dropped.append(day)
            result = connection.execute(
                text(f"DELETE FROM {DEFAULT_PARTITION} WHERE ts < :cutoff"),  # noqa: S608
                {"cutoff": day_start(oldest)},
            )
            default_dropped = result.rowcount
    return Maintenance(migrated, created, dropped, default_dropped)


def _migrate(connection: Connection, predictions: Table, today: dt.date) -> int:
    """The plain table's rows into a new partitioned one, in the caller's transaction."""
    connection.execute(text(f"LOCK TABLE {PREDICTIONS} IN ACCESS EXCLUSIVE MODE"))
    connection.execute(text(f"ALTER TABLE {PREDICTIONS} RENAME TO {UNPARTITIONED}"))
    for index in connection.execute(
        text("SELECT indexname FROM pg_indexes WHERE tablename = :t"), {"t": UNPARTITIONED}
    ).scalars():
        connection.execute(text(f'ALTER INDEX "{index}" RENAME TO "{index}_unpartitioned"'))
    span_query = f"SELECT min(ts), max(ts) FROM {UNPARTITIONED}"  # noqa: S608
    span = connection.execute(text(span_query)).one()
    create_partitioned(connection, predictions, today)
    if span[0] is not None:
        ensure_days(connection, day_of(span[0]), day_of(span[1]))
    quote = connection.dialect.identifier_preparer.quote
    names = ", ".join(quote(column.name) for column in predictions.columns)
    copy = f"INSERT INTO {PREDICTIONS} ({names}) SELECT {names} FROM {UNPARTITIONED}"  # noqa: S608
    copied = connection.execute(text(copy)).rowcount
    connection.execute(text(f"DROP TABLE {UNPARTITIONED}"))
    return copied
