"""Verify a view: replay the store into scratch tables and compare them with the live tables, row by row."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from projections.database import ProjectionDatabase
from projections.rebuild import Comparison, EventLog, RebuildableView, Replay

VERIFY_SUFFIX = "_verify"
# Differences listed per table; beyond that they are only counted (a wrong view may differ everywhere).
MAX_LISTED = 1_000


@dataclass(frozen=True)
class Difference:
    """One row that is not as the store says: `missing` from the live view, `unexpected` in it, or `differs`."""

    table: str
    key: dict[str, Any]
    kind: str
    # Column -> (live value, replayed value), for a row that differs.
    columns: dict[str, tuple[Any, Any]] = field(default_factory=dict)


@dataclass
class Verdict:
    view: str
    events: int
    differences: list[Difference] = field(default_factory=list)
    counted: int = 0

    @property
    def equal(self) -> bool:
        return self.counted == 0


def verify(live: ProjectionDatabase, view: RebuildableView, log: EventLog, progress=None) -> Verdict:
    """Replay every stored event into scratch tables, compare, and drop the scratch tables again.

    The store is read up to its end at the start: a projector that is still behind (or an event stored since)
    shows up as differences, so verify a view once the projector has caught up. Work the view's batches defer
    (billing's statements) is done first on both sides, so both are complete.
    """
    with live.transaction() as cursor:  # the live view's deferred work too: compare complete tables
        view.create_bare_tables(live, cursor)  # tables a newer version added (billing's marks), if missing
        view.settle(view.projection(live), cursor)
    replay = Replay(live, view, log, VERIFY_SUFFIX, progress)
    try:
        replay.fresh_tables()
        replay.copy(log.last_id())
        verdict = Verdict(view.name, replay.events)
        with replay.scratch.transaction() as cursor:
            replay.settle(cursor)
            for comparison in view.comparisons:
                _compare(cursor, live, replay.scratch, comparison, verdict)
            replay.drop(cursor)
    finally:
        replay.close()
    return verdict


def _compare(cursor: Any, live: ProjectionDatabase, scratch: ProjectionDatabase, c: Comparison, verdict: Verdict):
    """Keys of rows that are in one table and not, or not so, in the other: EXCEPT both ways, keys once."""
    keys = _differing_keys(live, scratch, c)
    cursor.execute(f"SELECT COUNT(*) FROM ({keys}) k")
    verdict.counted += cursor.fetchone()[0]
    cursor.execute(f"{keys} ORDER BY {', '.join(c.key)} LIMIT {MAX_LISTED}")
    for key in cursor.fetchall():
        verdict.differences.append(_difference(cursor, live, scratch, c, key))


def _differing_keys(live: ProjectionDatabase, scratch: ProjectionDatabase, c: Comparison) -> str:
    columns, key = ", ".join(c.columns), ", ".join(c.key)
    one_way = "SELECT {key} FROM (SELECT {columns} FROM {a} EXCEPT SELECT {columns} FROM {b}) {alias}"
    return (
        one_way.format(key=key, columns=columns, a=live.table(c.table), b=scratch.table(c.table), alias="held")
        + " UNION "
        + one_way.format(key=key, columns=columns, a=scratch.table(c.table), b=live.table(c.table), alias="replayed")
    )


def _difference(cursor: Any, live: ProjectionDatabase, scratch: ProjectionDatabase, c: Comparison, key: tuple):
    held, replayed = _row(cursor, live, c, key), _row(cursor, scratch, c, key)
    named = dict(zip(c.key, key, strict=True))
    if held is None or replayed is None:
        return Difference(c.table, named, "missing" if held is None else "unexpected")
    changed = {name: (a, b) for name, a, b in zip(c.columns, held, replayed, strict=True) if a != b}
    return Difference(c.table, named, "differs", changed)


def _row(cursor: Any, db: ProjectionDatabase, c: Comparison, key: tuple) -> tuple | None:
    condition = " AND ".join(f"{name} = {db.mark}" for name in c.key)
    cursor.execute(f"SELECT {', '.join(c.columns)} FROM {db.table(c.table)} WHERE {condition}", key)
    return cursor.fetchone()
