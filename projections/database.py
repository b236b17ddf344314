"""The projections' database: a SQLite file or a PostgreSQL schema, one transaction per batch, input offsets kept."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from enum import Enum
from typing import Any

OFFSETS_TABLE = "projection_offsets"
# Keys per `IN (...)`: well under what SQLite and psycopg take in one statement.
LOOKUP_CHUNK = 500
# Rows of one write from which PostgreSQL receives them by COPY into a staging table: psycopg's executemany spends
# some 50 us of Python per row, COPY a tenth of that, but the staging table costs a few round trips.
COPY_FROM_ROWS = 100
# Instants whose SQLite text is remembered (due times, openings and event times are written again and again): past
# this the memo starts afresh, so memory stays flat whatever the run's length.
INSTANTS_HELD = 100_000


class OnConflict(Enum):
    """What a written row does to a stored row of the same key."""

    REPLACE = "replace"  # rows are always written whole: the new one takes the old one's place
    KEEP = "keep"  # the stored row stays, the new one is left out


class ProjectionDatabase:
    """One DB-API connection to the projections' tables, and what differs between SQLite and PostgreSQL.

    `connect` opens a connection in autocommit mode: transactions are begun here, explicitly, so that a
    SQLite batch takes the write lock before it reads the states it will change.
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        postgres: bool = False,
        schema: str | None = None,
        errors: tuple[type[Exception], ...] = (sqlite3.Error,),
    ):
        self._connect = connect
        self._connection: Any = None
        self.postgres = postgres
        self.schema = schema
        self.errors = errors
        self.mark = "%s" if postgres else "?"
        # SQLite has no time type: instants are ISO text in UTC with a fixed precision, so text order is time order.
        self.instant_type = "TIMESTAMPTZ" if postgres else "TEXT"
        # An instant's text by the instant: equal instants (in any zone) have the one UTC text.
        self._instant_texts: dict[datetime, str] = {}

    @property
    def connection(self) -> Any:
        if self._connection is None:
            self._connection = self._connect()
        return self._connection

    def table(self, name: str) -> str:
        return f"{self.schema}.{name}" if self.schema else name

    def marks(self, count: int) -> str:
        return ", ".join([self.mark] * count)

    def instant(self, value: datetime | None) -> Any:
        """An instant as this database stores it."""
        if value is None or self.postgres:
            return value
        text = self._instant_texts.get(value)
        if text is None:
            if len(self._instant_texts) >= INSTANTS_HELD:
                self._instant_texts.clear()
            text = self._instant_texts[value] = value.astimezone(UTC).isoformat(timespec="microseconds")
        return text

    def read_instant(self, value: Any) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return value
        return datetime.fromisoformat(value)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor whose work commits together or not at all; a failed connection is dropped for a new one."""
        cursor = self._begin()
        try:
            yield cursor
            cursor.execute("COMMIT")
        except BaseException as error:
            self._rollback(cursor)
            if isinstance(error, self.errors):
                self.close()
            raise
        finally:
            cursor.close()

    def in_chunks(self, cursor: Any, statement: str, keys: Iterable[str]) -> list[tuple]:
        """`statement`, whose `{marks}` stands in `IN ({marks})`, run for every key in chunks the drivers take (a
        batch may touch thousands of keys); the rows it selects, if it is a SELECT."""
        wanted, rows = sorted(set(keys)), []
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            cursor.execute(statement.format(marks=self.marks(len(chunk))), chunk)
            rows += cursor.fetchall() if cursor.description else []
        return rows

    def insert(self, table: str, columns: Sequence[str], key: Sequence[str], on_conflict: OnConflict) -> str:
        """INSERT of one row of `columns` into `table`, and what it does when the key is held already."""
        values = f"VALUES ({self.marks(len(columns))})"
        return f"{self._insert_head(table, columns)} {values} {_conflict(columns, key, on_conflict)}"

    def write_rows(
        self, cursor: Any, table: str, columns: Sequence[str], key: Sequence[str], rows: Sequence[tuple],
        on_conflict: OnConflict,
    ) -> None:  # fmt: skip
        """`rows` into `table`, their keys unique among them. PostgreSQL gets many rows by COPY into a staging
        table (a temporary copy of the table's columns, emptied after use), then one INSERT ... SELECT."""
        if not rows:
            return
        if not self.postgres or len(rows) < COPY_FROM_ROWS:
            cursor.executemany(self.insert(table, columns, key, on_conflict), rows)
            return
        stage, names = "stage_" + self.table(table).replace(".", "_"), ", ".join(columns)
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} (LIKE {self.table(table)}) ON COMMIT DELETE ROWS")
        with cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"{self._insert_head(table, columns)} SELECT {names} FROM {stage} {_conflict(columns, key, on_conflict)}"
        )
        cursor.execute(f"TRUNCATE {stage}")  # a second write of the table in this transaction starts empty

    def _insert_head(self, table: str, columns: Sequence[str]) -> str:
        return f"INSERT INTO {self.table(table)} ({', '.join(columns)})"

    def query(self, statement: str, parameters: tuple | list = ()) -> list[tuple]:
        """Rows of one read, in a transaction of its own."""
        with self.transaction() as cursor:
            cursor.execute(statement, parameters)
            return cursor.fetchall()

    def _begin(self) -> Any:
        try:
            cursor = self.connection.cursor()
            # IMMEDIATE: SQLite takes the write lock now, so the states this batch reads cannot change under it.
            cursor.execute("BEGIN" if self.postgres else "BEGIN IMMEDIATE")
        except self.errors:
            self.close()
            raise
        return cursor

    def _rollback(self, cursor: Any) -> None:
        try:
            cursor.execute("ROLLBACK")
        except self.errors:
            self.close()

    def create_schema(self) -> None:
        with self.transaction() as cursor:
            if self.postgres and self.schema:
                cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table(OFFSETS_TABLE)} (consumer_group TEXT NOT NULL, "
                "topic TEXT NOT NULL, kafka_partition INTEGER NOT NULL, next_offset BIGINT NOT NULL, "
                "PRIMARY KEY (consumer_group, topic, kafka_partition))"
            )

    def stored_offsets(self, cursor: Any, group: str, topic: str) -> dict[int, int]:
        """The next offset to read per partition, as the last committed batch left it."""
        cursor.execute(
            f"SELECT kafka_partition, next_offset FROM {self.table(OFFSETS_TABLE)} "
            f"WHERE consumer_group = {self.mark} AND topic = {self.mark}",
            (group, topic),
        )
        return {partition: offset for partition, offset in cursor.fetchall()}

    def save_offsets(self, cursor: Any, group: str, offsets: Mapping[tuple[str, int], int]) -> None:
        cursor.executemany(
            f"INSERT INTO {self.table(OFFSETS_TABLE)} VALUES ({self.marks(4)}) "
            "ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE SET next_offset = excluded.next_offset",
            [(group, topic, partition, offset) for (topic, partition), offset in offsets.items()],
        )

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with suppress(*self.errors):  # already broken: dropped all the same
                connection.close()


def _conflict(columns: Sequence[str], key: Sequence[str], on_conflict: OnConflict) -> str:
    if on_conflict is OnConflict.KEEP:
        return f"ON CONFLICT ({', '.join(key)}) DO NOTHING"
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
