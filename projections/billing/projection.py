"""The billing projection: every event through the billing fold, statements and their lines kept in tables."""

from __future__ import annotations

import logging
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
from projections.billing.queries import billed_months, first_policy_month, statement
from projections.billing.rows import CustomerMonths, StateRows
from projections.billing.state import CLOSINGS, EVERY_MONTH, Changes, Closings, Loaded, changes_of, closings_of, restore
from projections.database import OnConflict, ProjectionDatabase
from projections.sla.projection import Applied, Failure
from projections.sla.tables import insert_new, upsert
from projections.state_cache import StateCache
from projections.views import create_views

LOG = logging.getLogger(__name__)
# A statement's `as_of` in its JSON (the only field of that name): an open statement's moves with every event.
AS_OF = re.compile(r'"as_of":"[^"]*"')


class BillingProjection:
    """Keeps `billing_statements` and `billing_statement_lines` equal to the billing fold of the events seen.

    The fold's state is stored with them as rows: the closings (shared by all customers), incidents by ticket,
    callbacks by event, plans by customer, frozen statements and carried adjustments by customer and month; a
    batch loads only the rows its events ask of. A batch stores the fold and marks the (customer, month)
    statements it moved; `refresh` rewrites the marked statements from their month's rows, coalescing batches.
    """

    name = "billing"
    # Every event: each one moves the fold's clock, which closes months by themselves.
    event_types: tuple[type[ev.DomainEvent], ...] = (ev.DomainEvent,)

    def __init__(self, db: ProjectionDatabase, book: PolicyBook):
        self.db = db
        self.book = book
        self.rows = StateRows(db)
        # The closings as last read or written: a batch parses the row only when it changed meanwhile.
        self.closings: StateCache[Closings] = StateCache(CLOSINGS.validate_json, _dumper(CLOSINGS))
        # The statement lines as last written: a statement rewritten gets only its changed lines written again.
        self.lines = WrittenLines(self._line)
        # Whether marks may wait: this object's batches set some, or (at the start) a crash may have left some.
        self.pending = True

    def create_tables(self, cursor: Any) -> None:
        refuse_legacy_state(self.db, cursor)
        tables.create_tables(self.db, cursor)
        create_closings(self.db, cursor)
        # The analysts' views join the SLA tables too: the projector creates those first.
        create_views(self.db, cursor)

    def apply(self, cursor: Any, events: Sequence[ev.DomainEvent]) -> Applied:
        """Fold a batch, in five steps; its statements wait for the next `refresh` (docs/billing.md).

        1. Lock and load the closings: the fold's clock is shared by all partitions, so batches of projectors
           in one group take turns here (PostgreSQL; SQLite's BEGIN IMMEDIATE serialises them already).
        2. Drop repeats: events whose id the projection holds, or that came twice in the batch. Load the rows
           the fold will ask of (`_load`).
        3. Fold the events, in the order given; an event the fold refuses is a failure.
        4. Store the rows the fold changed, and the ids of the events folded.
        5. Mark the (customer, month) statements the changes moved to be refreshed; every customer's months
           from the clock's on when the batch closes a month or enters a new one. In this transaction, so a
           crash before the refresh leaves the marks, and the next refresh (after a restart) does them.
        """
        closings = self._closings(cursor)
        fresh, result = self._fresh(cursor, events)
        if not fresh:
            return result
        everyone = self._reaches_everyone(closings, fresh)
        loaded = self._load(cursor, closings, fresh, everyone)
        fold = restore(self.book, closings, loaded)
        folded = [event for event in fresh if self._fold_one(fold, event, result)]
        changes = changes_of(fold, loaded)
        self._write_state(cursor, fold, changes, folded)
        marks = changes.touched(self.book.latest.calendar.zone)
        if everyone:
            marks |= self._months_of_everyone(closings, fold, fresh)
        self._mark(cursor, sorted(marks))
        self.pending = True
        return result

    def _load(self, cursor: Any, closings: Closings, events: list[ev.DomainEvent], everyone: bool) -> Loaded:
        """The rows the fold asks of for these events, in four steps.

        1. The incidents of the batch's tickets, and the plans of its customers (every customer's if it reaches
           everyone: a closing freezes each customer's statement).
        2. Everything of a customer with a new plan: it may freeze any month already closed.
        3. For an event of a month already closed: that customer and month's usage and frozen statement, and
           the customer's carried adjustments (it becomes an adjustment counting those before).
        4. If the batch reaches everyone, every customer's rows of the months it may close.
        """
        rows, loaded = self.rows, Loaded()
        rows.tickets(cursor, loaded, {str(e.ticket_id) for e in events if isinstance(e, ev.TicketEvent)})
        rows.subscriptions(cursor, loaded, None if everyone else _customers_in(events))
        rows.customers(cursor, loaded, {e.customer_id for e in events if isinstance(e, ev.PlanSubscribed)})
        late = self._closed_months_used(closings, events, loaded)
        rows.pairs(cursor, loaded, late)
        rows.carried(cursor, loaded, {customer_id for customer_id, _ in late})
        if everyone:
            rows.months(cursor, loaded, [str(month) for month in self._months_closable(closings, events)])
        return loaded

    def _closed_months_used(self, closings: Closings, events: list[ev.DomainEvent], loaded: Loaded) -> CustomerMonths:
        """The (customer, month) of each event's usage whose month was closed when the batch began."""
        zone, closed = self.book.latest.calendar.zone, {str(month) for month, _ in closings.closed}
        if not closed:
            return set()
        # Most events are of an open month: nothing before the end of the last month closed is worth a look.
        bound = max(month for month, _ in closings.closed).next().first_instant(zone)
        used = set()
        for event in events:
            if not isinstance(event, ev.TicketEvent):
                continue
            incident = loaded.incidents.get(event.ticket_id)
            instants = (event.occurred_at, incident.opened_at) if incident is not None else (event.occurred_at,)
            used |= {(event.customer_id, str(Month.of(instant, zone))) for instant in instants if instant < bound}
        return {(customer_id, month) for customer_id, month in used if month in closed}

    def _months_closable(self, closings: Closings, events: list[ev.DomainEvent]) -> list[Month]:
        """The months the batch may close: from the next to close to its latest event's, and those closed by hand."""
        zone = self.book.latest.calendar.zone
        month = closings.next_to_close or Month.of(self.book.policies[0].starts_at, zone)
        last = Month.of(max(event.occurred_at for event in events), zone)
        months = {Month.parse(e.month) for e in events if isinstance(e, ev.MonthClosed)}
        while month <= last:
            months.add(month)
            month = month.next()
        return sorted(months)

    def _months_of_everyone(self, closings: Closings, fold: BillingFold, events: list) -> CustomerMonths:
        """Every customer's statements of the months the batch may close or enter (all of them on a first batch)."""
        if closings.clock is None:
            return {(customer_id, EVERY_MONTH) for customer_id in fold.usage.subscriptions}
        months = {str(month) for month in self._months_closable(closings, events)}
        months.add(str(Month.of(fold.clock, self.book.latest.calendar.zone)))
        return {(customer_id, month) for customer_id in fold.usage.subscriptions for month in months}

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
        2. Read the marks with their counts; load the marked customers' plans, and the rows of each marked
           (customer, month), or all of a customer's marked for every month.
        3. Rewrite the marked statements as the fold now has them (only those that changed, with their lines).
        4. Clear each mark whose count is still the one read: one set again meanwhile stays for the next refresh.
        """
        closings = self._closings(cursor)
        marks = self._marks(cursor)
        if marks:
            whole = {customer_id for customer_id, month in marks if month == EVERY_MONTH}
            pairs = {(customer_id, month) for customer_id, month in marks if customer_id not in whole}
            loaded = Loaded()
            self.rows.subscriptions(cursor, loaded, {customer_id for customer_id, _ in marks})
            self.rows.customers(cursor, loaded, whole)
            self.rows.pairs(cursor, loaded, pairs)
            self._write_statements(cursor, restore(self.book, closings, loaded), whole, pairs)
            self._clear(cursor, marks)
        return len({customer_id for customer_id, _ in marks})

    def _mark(self, cursor: Any, marks: list[tuple[str, str]]) -> None:
        cursor.executemany(
            f"INSERT INTO {self.db.table(tables.REFRESH)} AS marked (customer_id, month, marks) "
            f"VALUES ({self.db.mark}, {self.db.mark}, 1) "
            "ON CONFLICT (customer_id, month) DO UPDATE SET marks = marked.marks + 1",
            marks,
        )

    def _marks(self, cursor: Any) -> dict[tuple[str, str], int]:
        cursor.execute(f"SELECT customer_id, month, marks FROM {self.db.table(tables.REFRESH)}")
        return {(customer_id, month): marks for customer_id, month, marks in cursor.fetchall()}

    def _clear(self, cursor: Any, marks: dict[tuple[str, str], int]) -> None:
        condition = f"customer_id = {self.db.mark} AND month = {self.db.mark} AND marks = {self.db.mark}"
        rows = [(*key, count) for key, count in marks.items()]
        cursor.executemany(f"DELETE FROM {self.db.table(tables.REFRESH)} WHERE {condition}", rows)

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

    def _write_statements(self, cursor: Any, fold: BillingFold, whole: set[str], pairs: CustomerMonths) -> None:
        """The marked statements as the fold now has them, in place of the stored ones, in four steps.

        1. Build them, and read the stored ones of the same customers.
        2. A statement that differs in more than its `as_of` (an open statement moves with the fold's clock) is
           rewritten; one stored that the fold no longer has is deleted with its lines.
        3. A rewritten statement whose stored lines are the ones last written here gets only its changed lines
           written over them (most rewrites add a line or two to thousands); any other gets all its lines anew.
        4. One that differs only in its `as_of` gets the new `as_of`; its lines are the same, so they stay.
        """
        found = {_key(s): s for c in sorted(whole) for s in statements_of(fold, c)}
        found |= {_key(s): s for s in (statement_in(fold, c, m) for c, m in sorted(pairs)) if s is not None}
        stored = self._stored_statements(cursor, whole, pairs)
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

    def _stored_statements(self, cursor: Any, whole: set[str], pairs: CustomerMonths) -> dict[StatementKey, str]:
        """The stored statements of the customers in `whole`, and of the (customer, month) `pairs`."""
        select = f"SELECT customer_id, month, statement FROM {self.db.table(tables.STATEMENTS)}"
        rows = self.rows.select_in(cursor, select, "customer_id IN ({marks})", (), whole)
        for month in sorted({month for _, month in pairs}):
            where = f"month = {self.db.mark} AND customer_id IN ({{marks}})"
            rows += self.rows.select_in(cursor, select, where, (month,), [c for c, of in pairs if of == month])
        return {(customer_id, month): text for customer_id, month, text in rows}

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

    def _write_state(self, cursor: Any, fold: BillingFold, changes: Changes, folded: list) -> None:
        db = self.db
        cursor.execute(
            upsert(db, tables.CLOSINGS, ("singleton", "state"), ("singleton",)),
            (1, self.closings.dump(_CLOSINGS_KEY, closings_of(fold))),
        )
        # Only the rows the batch changed: a row loaded and left as it was is still the truth.
        self.rows.write(cursor, changes, self.book.latest.calendar.zone)
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


def statement_in(fold: BillingFold, customer_id: str, month: str) -> Statement | None:
    """The customer's statement of the month as of the fold's clock, if billed: what `statements_of` has of it."""
    if fold.clock is None:
        return None
    of = Month.parse(month)
    if of < first_policy_month(fold):
        return None
    return statement(fold, customer_id, of, fold.clock)


def refuse_legacy_state(db: ProjectionDatabase, cursor: Any) -> None:
    """A database of an earlier version holds the fold's state in one row per customer, which this version
    does not read: going on would serve statements without that history. It needs a rebuild first."""
    if not has_table(db, cursor, tables.LEGACY_CUSTOMERS):
        return
    message = (
        f"the billing state is in the table {tables.LEGACY_CUSTOMERS} of an earlier version, which this version "
        "does not read: run `nettask projections rebuild billing` once (it replays the event store into the new "
        "tables and drops the old one), then start the projector again"
    )
    LOG.error(message)
    raise LegacyBillingState(message)


def has_table(db: ProjectionDatabase, cursor: Any, name: str) -> bool:
    if db.postgres:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (db.table(name),))
        return bool(cursor.fetchone()[0])
    cursor.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (db.table(name),))
    return bool(cursor.fetchone()[0])


class LegacyBillingState(RuntimeError):
    """The billing tables are of an earlier version: a rebuild must come first."""


def _only_as_of_differs(stored: str, built: str) -> bool:
    """Whether two statements' JSON is the same but for the instant they are as of."""
    return AS_OF.sub("", stored) == AS_OF.sub("", built)


def _customers_in(events: Iterable[ev.DomainEvent]) -> set[str]:
    return {event.customer_id for event in events if isinstance(event, ev.TicketEvent | ev.PlanSubscribed)}


def _key(s: Statement) -> StatementKey:
    return s.customer_id, str(s.month)
