"""The billing projection: every event through the billing fold, statements and their lines kept in tables."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from domain import events as ev
from domain.billing import is_past_closing, policy_for_month
from domain.money import Month
from domain.policy import PolicyBook
from domain.statement import Statement, total
from projections.billing import tables
from projections.billing.fold import BillingFold
from projections.billing.lines import LineChanges, StatementKey, WrittenLines
from projections.billing.queries import billed_months, statement
from projections.billing.state import CLOSINGS, CUSTOMER, Closings, CustomerBilling, closings_of, customers_of, restore
from projections.database import OnConflict, ProjectionDatabase
from projections.sla.projection import Applied, Failure
from projections.sla.tables import insert_new, upsert
from projections.state_cache import StateCache
from projections.views import create_views

# A statement's `as_of` in its JSON (the only field of that name): an open statement's moves with every event.
AS_OF = re.compile(r'"as_of":"[^"]*"')


class BillingProjection:
    """Keeps `billing_statements` and `billing_statement_lines` equal to the billing fold of the events seen.

    The fold's state is stored with them: the closings (shared by all customers) and each customer's usage,
    frozen statements and carried adjustments, so a batch loads only the customers it touches. A batch stores
    the fold and marks its customers; `refresh` rewrites the marked customers' statements, coalescing batches.
    """

    name = "billing"
    # Every event: each one moves the fold's clock, which closes months by themselves.
    event_types: tuple[type[ev.DomainEvent], ...] = (ev.DomainEvent,)

    def __init__(self, db: ProjectionDatabase, book: PolicyBook):
        self.db = db
        self.book = book
        # The stored shares and closings as last read or written: a batch parses only rows changed meanwhile.
        self.shares: StateCache[CustomerBilling] = StateCache(CUSTOMER.validate_json, _dumper(CUSTOMER))
        self.closings: StateCache[Closings] = StateCache(CLOSINGS.validate_json, _dumper(CLOSINGS))
        # The statement lines as last written: a statement rewritten gets only its changed lines written again.
        self.lines = WrittenLines(self._line)
        # Whether marks may wait: this object's batches set some, or (at the start) a crash may have left some.
        self.pending = True

    def create_tables(self, cursor: Any) -> None:
        tables.create_tables(self.db, cursor)
        create_closings(self.db, cursor)
        # The analysts' views join the SLA tables too: the projector creates those first.
        create_views(self.db, cursor)

    def apply(self, cursor: Any, events: Sequence[ev.DomainEvent]) -> Applied:
        """Fold a batch, in five steps; its statements wait for the next `refresh` (docs/billing.md).

        1. Lock and load the closings: the fold's clock is shared by all partitions, so batches of projectors
           in one group take turns here (PostgreSQL; SQLite's BEGIN IMMEDIATE serialises them already).
        2. Drop repeats: events whose id the projection holds, or that came twice in the batch. Load the
           stored share of each customer the batch touches; every customer's when the batch closes a month
           or enters a new one (their statements change too).
        3. Fold the events, in the order given; an event the fold refuses is a failure.
        4. Store the fold's state (a customer's share only when it changed) and the ids of the events folded.
        5. Mark the loaded customers' statements to be refreshed: in this transaction, so a crash before the
           refresh leaves the marks, and the next refresh (after a restart) does them.
        """
        closings = self._closings(cursor)
        fresh, result = self._fresh(cursor, events)
        if not fresh:
            return result
        wanted = None if self._reaches_everyone(closings, fresh) else _customers_in(fresh)
        loaded = self._customers(cursor, wanted)
        fold = restore(self.book, closings, loaded)
        folded = [event for event in fresh if self._fold_one(fold, event, result)]
        names = sorted(set(loaded) | set(fold.usage.subscriptions) | _customers_in(folded))
        self._write_state(cursor, fold, names, loaded, folded)
        self._mark(cursor, names)
        self.pending = True
        return result

    def refresh(self) -> int:
        """Rewrite the marked customers' statements in a transaction of their own; returns how many customers.

        Without a batch since the last refresh it does nothing: an idle projector takes no lock every poll.
        """
        if not self.pending:
            return 0
        self.pending = False  # before: a batch folded during the refresh sets it again
        try:
            with self.db.transaction() as cursor:
                return self.refresh_in(cursor)
        except Exception:
            self.pending = True
            raise

    def refresh_in(self, cursor: Any) -> int:
        """The marked customers' statements rewritten from the stored fold, in four steps.

        1. Lock and load the closings, as a batch does: batches of other projectors wait meanwhile.
        2. Read the marks with their counts, and the stored shares of the marked customers.
        3. Rewrite their statements as the fold now has them (only those that changed, with their lines).
        4. Clear each mark whose count is still the one read: one set again meanwhile stays for the next refresh.
        """
        closings = self._closings(cursor)
        marks = self._marks(cursor)
        if marks:
            fold = restore(self.book, closings, self._customers(cursor, set(marks)))
            self._write_statements(cursor, fold, sorted(marks))
            self._clear(cursor, marks)
        return len(marks)

    def _mark(self, cursor: Any, customer_ids: list[str]) -> None:
        cursor.executemany(
            f"INSERT INTO {self.db.table(tables.REFRESH)} AS marked (customer_id, marks) VALUES ({self.db.mark}, 1) "
            "ON CONFLICT (customer_id) DO UPDATE SET marks = marked.marks + 1",
            [(customer_id,) for customer_id in customer_ids],
        )

    def _marks(self, cursor: Any) -> dict[str, int]:
        cursor.execute(f"SELECT customer_id, marks FROM {self.db.table(tables.REFRESH)}")
        return dict(cursor.fetchall())

    def _clear(self, cursor: Any, marks: dict[str, int]) -> None:
        condition = f"customer_id = {self.db.mark} AND marks = {self.db.mark}"
        cursor.executemany(f"DELETE FROM {self.db.table(tables.REFRESH)} WHERE {condition}", list(marks.items()))

    def _fresh(self, cursor: Any, events: Sequence[ev.DomainEvent]) -> tuple[list[ev.DomainEvent], Applied]:
        ids = [str(event.event_id) for event in events]
        held = self._held(cursor, set(ids))
        fresh, result = [], Applied()
        for event_id, event in zip(ids, events, strict=True):
            if event_id in held:
                result.repeats += 1  # the relay may publish an event twice; the fold has it already
                continue
            held.add(event_id)
            fresh.append(event)
        return fresh, result

    def _held(self, cursor: Any, event_ids: Iterable[str]) -> set[str]:
        select = f"SELECT event_id FROM {self.db.table(tables.SEEN)} WHERE event_id IN ({{marks}})"
        return {row[0] for row in self.db.in_chunks(cursor, select, event_ids)}

    def _reaches_everyone(self, closings: Closings, events: list[ev.DomainEvent]) -> bool:
        """Whether the batch closes a month or enters a new one: then every customer's statements change."""
        if closings.clock is None or any(isinstance(event, ev.MonthClosed) for event in events):
            return True
        latest, zone = max(event.occurred_at for event in events), self.book.latest.calendar.zone
        due = closings.next_to_close or Month.of(closings.clock, zone)
        return Month.of(latest, zone) != Month.of(closings.clock, zone) or is_past_closing(
            policy_for_month(self.book, due), due, latest
        )

    def _fold_one(self, fold: BillingFold, event: ev.DomainEvent, result: Applied) -> bool:
        try:
            fold.apply(event)
        except Exception as error:  # e.g. an escalation of a ticket whose opening the fold never saw
            result.failures.append(Failure(event, "unappliable", f"{type(error).__name__}: {error}"))
            return False
        result.applied += 1
        return True

    def _closings(self, cursor: Any) -> Closings:
        lock = " FOR UPDATE" if self.db.postgres else ""
        cursor.execute(f"SELECT state FROM {self.db.table(tables.CLOSINGS)} WHERE singleton = 1{lock}")
        return self.closings.load(_CLOSINGS_KEY, cursor.fetchone()[0])

    def _customers(self, cursor: Any, wanted: set[str] | None) -> dict[str, CustomerBilling]:
        """The stored share of the wanted customers; of every customer when `wanted` is None."""
        if wanted is None:
            cursor.execute(f"SELECT customer_id, state FROM {self.db.table(tables.CUSTOMERS)}")
            rows = cursor.fetchall()
        else:
            rows = self.db.in_chunks(
                cursor,
                f"SELECT customer_id, state FROM {self.db.table(tables.CUSTOMERS)} WHERE customer_id IN ({{marks}})",
                wanted,
            )
        return {customer_id: self.shares.load(customer_id, state) for customer_id, state in rows}

    def _write_statements(self, cursor: Any, fold: BillingFold, customer_ids: list[str]) -> None:
        """Each customer's statements as the fold now has them, in place of the stored ones, in four steps.

        1. Build them, and read the stored ones of the same customers.
        2. A statement that differs in more than its `as_of` (an open statement moves with the fold's clock) is
           rewritten; one stored that the fold no longer has is deleted with its lines.
        3. A rewritten statement whose stored lines are the ones last written here gets only its changed lines
           written over them (most rewrites add a line or two to thousands); any other gets all its lines anew.
        4. One that differs only in its `as_of` gets the new `as_of`; its lines are the same, so they stay.
        """
        found = {(s.customer_id, str(s.month)): s for c in customer_ids for s in statements_of(fold, c)}
        stored = self._stored_statements(cursor, customer_ids)
        texts = {key: s.model_dump_json() for key, s in found.items()}
        held = {key: text for key, text in texts.items() if stored.get(key) == text}
        moved = [key for key, text in texts.items() if key in stored and key not in held
                 and _only_as_of_differs(stored[key], text)]  # fmt: skip
        changed = [key for key in found if key not in held and key not in moved]
        updates = {key: self.lines.changes(key, stored.get(key), found[key]) for key in changed}
        whole = [key for key in changed if updates[key] is None]
        self._delete_statements(cursor, [*whole, *(key for key in stored if key not in found)])
        self._insert_statements(cursor, [found[key] for key in whole], texts)
        self._update_statements(cursor, {key: found[key] for key in changed if key not in whole}, texts, updates)
        cursor.executemany(
            f"UPDATE {self.db.table(tables.STATEMENTS)} SET as_of = {self.db.mark}, statement = {self.db.mark} "
            f"WHERE customer_id = {self.db.mark} AND month = {self.db.mark}",
            [(self.db.instant(found[key].as_of), texts[key], *key) for key in moved],
        )
        for key in moved:
            self.lines.moved(key, texts[key])

    def _stored_statements(self, cursor: Any, customer_ids: list[str]) -> dict[tuple[str, str], str]:
        select = (
            f"SELECT customer_id, month, statement FROM {self.db.table(tables.STATEMENTS)} "
            "WHERE customer_id IN ({marks})"
        )
        return {
            (customer_id, month): text for customer_id, month, text in self.db.in_chunks(cursor, select, customer_ids)
        }

    def _delete_statements(self, cursor: Any, keys: list[tuple[str, str]]) -> None:
        for table in (tables.LINES, tables.STATEMENTS):
            condition = f"customer_id = {self.db.mark} AND month = {self.db.mark}"
            cursor.executemany(f"DELETE FROM {self.db.table(table)} WHERE {condition}", keys)
        for key in keys:
            self.lines.forget(key)

    def _insert_statements(self, cursor: Any, found: list[Statement], texts: dict[StatementKey, str]) -> None:
        write, keep = self.db.write_rows, OnConflict.KEEP
        statement_rows = [self._statement_row(s, texts[_key(s)]) for s in found]
        write(cursor, tables.STATEMENTS, tables.STATEMENT_COLUMNS, ("customer_id", "month"), statement_rows, keep)
        lines = {_key(s): self.lines.rows(s) for s in found}
        rows = [row for rows in lines.values() for row in rows]
        write(cursor, tables.LINES, tables.LINE_COLUMNS, ("customer_id", "month", "line"), rows, keep)
        for s in found:
            self.lines.remember(_key(s), texts[_key(s)], s, lines[_key(s)])

    def _update_statements(
        self, cursor: Any, found: dict[StatementKey, Statement], texts: dict[StatementKey, str],
        updates: dict[StatementKey, LineChanges | None],
    ) -> None:  # fmt: skip
        """Statements rewritten over their stored rows: the statement row whole, of its lines only the changed."""
        write, replace = self.db.write_rows, OnConflict.REPLACE
        statement_rows = [self._statement_row(s, texts[key]) for key, s in found.items()]
        write(cursor, tables.STATEMENTS, tables.STATEMENT_COLUMNS, ("customer_id", "month"), statement_rows, replace)
        rows = [row for key in found for row in updates[key].rows]
        write(cursor, tables.LINES, tables.LINE_COLUMNS, ("customer_id", "month", "line"), rows, replace)
        cursor.executemany(
            f"DELETE FROM {self.db.table(tables.LINES)} WHERE customer_id = {self.db.mark} AND month = "
            f"{self.db.mark} AND line >= {self.db.mark}",
            [(*key, updates[key].dropped_from) for key in found],
        )
        for key, s in found.items():
            self.lines.remember(key, texts[key], s, updates[key].rows)

    def _write_state(
        self, cursor: Any, fold: BillingFold, names: list[str], loaded: dict[str, CustomerBilling], folded: list
    ) -> None:
        db = self.db
        cursor.execute(
            upsert(db, tables.CLOSINGS, ("singleton", "state"), ("singleton",)),
            (1, self.closings.dump(_CLOSINGS_KEY, closings_of(fold))),
        )
        # A share equal to the stored one (a customer loaded only because the batch reached everyone) is not
        # dumped again: its text in the database and the cache is still the truth.
        shares = {c: share for c, share in customers_of(fold, names).items() if loaded.get(c) != share}
        rows = [(customer_id, self.shares.dump(customer_id, share)) for customer_id, share in shares.items()]
        db.write_rows(cursor, tables.CUSTOMERS, ("customer_id", "state"), ("customer_id",), rows, OnConflict.REPLACE)
        seen = [(str(e.event_id), e.type, db.instant(e.occurred_at)) for e in folded]
        seen_columns = ("event_id", "event_type", "occurred_at")
        db.write_rows(cursor, tables.SEEN, seen_columns, ("event_id",), seen, OnConflict.KEEP)

    def _statement_row(self, s: Statement, text: str) -> tuple:
        money = self._money
        return (
            s.customer_id, str(s.month), s.plan, s.policy_version, s.currency, money(s.plan_fee),
            s.included_allowance, s.included_used, s.callbacks_used, s.callbacks_included, s.callbacks_over,
            money(s.callback_charge), money(total(s.adjustments)), money(s.net), money(s.vat_rate), money(s.vat),
            money(s.gross), s.closed, self.db.instant(s.as_of), text,
        )  # fmt: skip

    def _line(self, row: tuple) -> tuple:
        *head, occurred_at, severity, band, included, over, amount, adjusted, detail, event_ids = row
        return (
            *head, self.db.instant(occurred_at), severity, band, included, over, self._money(amount), adjusted,
            detail, event_ids,
        )  # fmt: skip

    def _money(self, amount: Decimal) -> Any:
        return amount if self.db.postgres else str(amount)


def create_closings(db: ProjectionDatabase, cursor: Any) -> None:
    """The closings row, from the start: every batch locks it, so it must exist before the first one."""
    statement = insert_new(db, tables.CLOSINGS, ("singleton", "state"), ("singleton",))
    cursor.execute(statement, (1, CLOSINGS.dump_json(Closings()).decode()))


_CLOSINGS_KEY = "closings"


def _dumper(adapter: Any) -> Any:
    return lambda state: adapter.dump_json(state).decode()


def statements_of(fold: BillingFold, customer_id: str) -> list[Statement]:
    """Every statement of the customer, as of the fold's clock: the same the event store's fold shows."""
    if fold.clock is None:
        return []
    months = billed_months(fold, customer_id, fold.clock)
    return [s for s in (statement(fold, customer_id, m, fold.clock) for m in months) if s is not None]


def _only_as_of_differs(stored: str, built: str) -> bool:
    """Whether two statements' JSON is the same but for the instant they are as of."""
    return AS_OF.sub("", stored) == AS_OF.sub("", built)


def _customers_in(events: Iterable[ev.DomainEvent]) -> set[str]:
    return {event.customer_id for event in events if isinstance(event, ev.TicketEvent | ev.PlanSubscribed)}


def _key(s: Statement) -> StatementKey:
    return s.customer_id, str(s.month)
