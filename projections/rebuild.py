"""Rebuild a view from the event store into fresh tables, then switch the live tables over in one transaction.

Why the projector's offsets stay right without being touched. The projector ignores an event whose stream
version its ticket row already holds, and refuses (dead-letters) one that skips a version. So the new tables
are safe to hand to the projector exactly when, for every ticket, they hold at least every event the projector
has committed for it. The switch makes sure of that:

1. Fill fresh tables (`<table>_rebuild`, primary keys only) from the store's notification log, page by page,
   many events per transaction, up to the log's end as it is now. The live projector goes on writing the old
   tables meanwhile. A view whose tickets are independent may be filled by several processes instead, each
   folding the events of its share of the tickets (infra/compose/parallel_rebuild.py); steps 2-4 are the same.
2. Catch up a few times, outside any lock, so that little is left for step 3.
3. In the switch transaction, lock the live tables first (SQLite: the file's write lock; PostgreSQL: ACCESS
   EXCLUSIVE, which waits for the projector's open batch to commit and holds its next one). Every event the
   projector has committed by then was stored before the relay published it, so reading the log to its end
   now, inside the lock, covers all of them: the new tables are at or ahead of the old ones, ticket by ticket.
   Then the work the view's batches deferred (billing's statements) is done, so the new tables are complete.
4. Drop the old tables, rename the fresh ones, give their keys and indexes the live names, commit.

After the switch the projector goes on from its own offsets: an event the rebuild already covered is at or
below the version the row holds and is ignored as a repeat; one stored after step 3 is the next version. Both
directions of "one saw what the other did not" are thus harmless, and no offset needs rewriting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from domain import events as ev
from projections.database import ProjectionDatabase
from projections.views import create_views, drop_views

# Events applied per transaction while filling the fresh tables: big batches make a rebuild fast.
BATCH_EVENTS = 10_000
# Notifications read from the store per round trip.
PAGE = 1_000
# Catch-up passes before the switch; what is left after them is read under the lock.
CATCH_UP_PASSES = 3
REBUILD_SUFFIX = "_rebuild"
Progress = Callable[[int, int], None]


class EventLog(Protocol):
    """The store's notification log, as the rebuild reads it."""

    def last_id(self) -> int: ...

    def read(self, after: int, limit: int, upto: int) -> tuple[list[ev.TicketEvent], int]:
        """Ticket events of the notifications after `after` up to `upto` (at most `limit` notifications), and
        the last notification id covered (`upto` when there were none)."""


class Projection(Protocol):
    def apply(self, cursor: Any, events: Sequence[ev.TicketEvent]) -> Any: ...


@dataclass(frozen=True)
class Filled:
    """What filling the fresh tables came to: events applied, and how many of them the view refused."""

    events: int
    failures: int


# Step 1 done elsewhere (by several processes): fills the fresh tables up to a notification id, reporting
# progress, and says what it applied; raises RebuildFailed, the live tables untouched, when it cannot.
FillTables = Callable[[int, Progress], Filled]


class RebuildFailed(Exception):
    """A rebuild stopped before its switch: the live tables are as they were. The message says why, in one line."""


def settled_already(_projection: Any, _cursor: Any) -> None:
    """A view whose batches leave no work behind: its tables are complete after every batch."""


@dataclass(frozen=True)
class Comparison:
    """A table verify compares: its key and the columns that must be equal (internal state left out)."""

    table: str
    key: tuple[str, ...]
    columns: tuple[str, ...]


@dataclass(frozen=True)
class RebuildableView:
    """What rebuild and verify need to know of a view; register one per view (infra/compose/rebuild.py)."""

    name: str
    # In the order the live projection first takes them in a transaction: the switch-over locks them in this
    # order on PostgreSQL, and any other order can deadlock with a live batch.
    tables: tuple[str, ...]
    projection: Callable[[ProjectionDatabase], Projection]
    create_bare_tables: Callable[[ProjectionDatabase, Any], None]
    create_indexes: Callable[[ProjectionDatabase, Any], None]
    comparisons: tuple[Comparison, ...]
    # The work the view's batches defer (billing's statements), done in the cursor: before a switch or a compare.
    settle: Callable[[Any, Any], None] = settled_already


class RenamedTables(ProjectionDatabase):
    """The same database on a connection of its own, with every table name given a suffix: scratch tables."""

    def __init__(self, live: ProjectionDatabase, suffix: str):
        super().__init__(live._connect, postgres=live.postgres, schema=live.schema, errors=live.errors)
        self.suffix = suffix

    def table(self, name: str) -> str:
        return super().table(name + self.suffix)


class Replay:
    """A view's events replayed from the log into scratch tables, many events per transaction."""

    def __init__(self, live: ProjectionDatabase, view: RebuildableView, log: EventLog, suffix: str, progress=None):
        self.live, self.view, self.log = live, view, log
        self.scratch = RenamedTables(live, suffix)
        self.projection = view.projection(self.scratch)
        self.progress: Progress = progress or (lambda _done, _total: None)
        self.position = 0
        self.events = 0
        self.failures = 0

    def fresh_tables(self) -> None:
        with self.scratch.transaction() as cursor:
            self.drop(cursor)
            self.view.create_bare_tables(self.scratch, cursor)

    def drop(self, cursor: Any) -> None:
        for name in self.view.tables:
            cursor.execute(f"DROP TABLE IF EXISTS {self.scratch.table(name)}")

    def copy(self, target: int) -> None:
        """Everything up to notification `target`, one transaction per batch."""
        while self.position < target:
            with self.scratch.transaction() as cursor:
                self.copy_batch(cursor, target)

    def fill(self, target: int, tables: FillTables | None) -> None:
        """Step 1: everything up to `target`, by this replay, or by `tables` into the same fresh tables."""
        if tables is None:
            self.copy(target)
            return
        filled = tables(target, self.progress)
        self.position = target
        self.events += filled.events
        self.failures += filled.failures

    def copy_batch(self, cursor: Any, target: int) -> None:
        """Up to BATCH_EVENTS events read in pages (each page moves the position on) and applied at once."""
        events: list[ev.TicketEvent] = []
        while self.position < target and len(events) < BATCH_EVENTS:
            page, self.position = self.log.read(self.position, PAGE, target)
            events += page
        result = self.projection.apply(cursor, events)
        self.events += len(events)
        self.failures += len(result.failures)
        self.progress(self.position, target)

    def settle(self, cursor: Any) -> None:
        self.view.settle(self.projection, cursor)

    def close(self) -> None:
        self.scratch.close()


@dataclass(frozen=True)
class RebuildReport:
    view: str
    events: int
    position: int
    failures: int


def rebuild(
    live: ProjectionDatabase, view: RebuildableView, log: EventLog, progress=None, fill: FillTables | None = None
) -> RebuildReport:
    """Steps 1-4 of the module's docstring; the live tables change only in step 4's single transaction. `fill`,
    when given, does step 1 (into the fresh tables this creates); the catch-up and the switch are done here."""
    replay = Replay(live, view, log, REBUILD_SUFFIX, progress)
    try:
        replay.fresh_tables()
        replay.fill(log.last_id(), fill)
        for _ in range(CATCH_UP_PASSES):
            target = log.last_id()
            if target - replay.position < PAGE:
                break
            replay.copy(target)
        with replay.scratch.transaction() as cursor:
            _switch(replay, cursor)
    finally:
        replay.close()
    return RebuildReport(view.name, replay.events, replay.position, replay.failures)


def _switch(replay: Replay, cursor: Any) -> None:
    """Steps 3 and 4, inside one transaction."""
    live, view = replay.live, replay.view
    view.create_bare_tables(live, cursor)  # a first rebuild may come before the projector ever ran
    if live.postgres:
        cursor.execute(f"LOCK TABLE {', '.join(live.table(t) for t in view.tables)} IN ACCESS EXCLUSIVE MODE")
    target = replay.log.last_id()
    while replay.position < target:
        replay.copy_batch(cursor, target)
    replay.settle(cursor)
    # The analysts' views read the live tables: PostgreSQL refuses to drop a table a view depends on.
    had_views = drop_views(live, cursor)
    for name in view.tables:
        cursor.execute(f"DROP TABLE {live.table(name)}")
        cursor.execute(f"ALTER TABLE {replay.scratch.table(name)} RENAME TO {name}")
        if live.postgres:  # the key's index keeps its name through a rename; the next rebuild needs it free
            cursor.execute(
                f"ALTER TABLE {live.table(name)} RENAME CONSTRAINT {name}{REBUILD_SUFFIX}_pkey TO {name}_pkey"
            )
    view.create_indexes(live, cursor)
    if had_views:
        create_views(live, cursor)
