"""The billing projection on an in-memory SQLite database: in batches of any size, the tables equal the pure fold."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from uuid import uuid4

import pytest

from domain.commands import parse_command
from domain.desk import TicketDesk
from domain.statement import Statement
from projections.billing import BillingFold, all_statements
from projections.billing.lines import MAX_LINES, WrittenLines
from projections.billing.projection import BillingProjection, LegacyBillingState
from projections.database import ProjectionDatabase

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "march-2026.jsonl"
CLOSE_MARCH = (
    '{"type": "CloseMonth", "command_id": "0f8c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f", "actor": "operator.jane",'
    ' "occurred_at": "2026-04-02T09:00:00+02:00", "source": "nettask-operator", "month": "2026-03"}'
)
# acme's A-6 (C, business hours, billed 85.00) escalated to B after March closed: +74.00 on April.
ESCALATE_LATE = (
    '{"type": "EscalateTicket", "command_id": "1f8c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f", "actor": "agent.kim",'
    ' "occurred_at": "2026-04-08T10:00:00+02:00", "ticket_id": "e351e5be-7a97-54a5-8a5f-3db611d1d44e",'
    ' "to_severity": "B"}'
)


def recorded_events(book, extra: list[str] = ()) -> list:
    desk = TicketDesk(book, env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    for line in [*EXAMPLE.read_text().splitlines(), *extra]:
        try:
            command = parse_command(line)
        except ValueError:  # the example's one invalid line
            continue
        desk.handle(command)
    return list(desk.recorded_events())


def memory_database() -> ProjectionDatabase:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    return ProjectionDatabase(lambda: connection)


def projected(book, events: list, batch: int, refresh_every: int | None = None) -> ProjectionDatabase:
    """The events applied in batches, statements refreshed after every `refresh_every` batches and at the end."""
    db = memory_database()
    projection = BillingProjection(db, book)
    with db.transaction() as cursor:
        projection.create_tables(cursor)
    for number, start in enumerate(range(0, len(events), batch), start=1):
        with db.transaction() as cursor:
            projection.apply(cursor, events[start : start + batch])
        if refresh_every and number % refresh_every == 0:
            projection.refresh()
    projection.refresh()
    return db


def marked(db: ProjectionDatabase) -> dict[str, int]:
    """The marks waiting, summed per customer."""
    return dict(db.query(f"SELECT customer_id, SUM(marks) FROM {db.table('billing_refresh')} GROUP BY customer_id"))


def marked_statements(db: ProjectionDatabase) -> dict[tuple[str, str], int]:
    """The marks waiting, per (customer, month) statement ("*": every month of the customer)."""
    rows = db.query(f"SELECT customer_id, month, marks FROM {db.table('billing_refresh')}")
    return {(customer_id, month): count for customer_id, month, count in rows}


def stored_statements(db: ProjectionDatabase) -> list[Statement]:
    rows = db.query(f"SELECT statement FROM {db.table('billing_statements')} ORDER BY customer_id, month")
    return [Statement.model_validate_json(row[0]) for row in rows]


@pytest.mark.parametrize("batch", [1, 3, 7, 1_000])
def test_the_tables_equal_the_pure_fold_in_batches_of_any_size(policy_book, batch):
    events = recorded_events(policy_book, [CLOSE_MARCH, ESCALATE_LATE])
    db = projected(policy_book, events, batch)
    fold = BillingFold(policy_book).apply_all(events)
    assert stored_statements(db) == all_statements(fold, fold.clock)


def test_a_late_escalation_is_one_adjustment_line_on_april_and_march_stays_as_closed(policy_book):
    events = recorded_events(policy_book, [CLOSE_MARCH, ESCALATE_LATE])
    late = next(i for i, e in enumerate(events) if e.type == "Escalated" and e.occurred_at.month == 4)
    db = projected(policy_book, events[:late], 1_000)
    march = "SELECT statement FROM billing_statements WHERE customer_id = 'acme' AND month = '2026-03'"
    closed = db.query(march)
    projection = BillingProjection(db, policy_book)
    with db.transaction() as cursor:
        projection.apply(cursor, events[late:])
    projection.refresh()
    assert db.query(march) == closed and '"closed":true' in closed[0][0]
    lines = db.query(
        "SELECT month, kind, reference, amount, adjusted_month FROM billing_statement_lines WHERE kind = 'adjustment'"
    )
    assert lines == [("2026-04", "adjustment", "crm:A-6", "74.00", "2026-03")]


def test_repeats_are_not_counted_twice(policy_book):
    events = recorded_events(policy_book, [CLOSE_MARCH, ESCALATE_LATE])
    db = projected(policy_book, [*events, *events[:10], *events], 5)
    fold = BillingFold(policy_book).apply_all(events)
    assert stored_statements(db) == all_statements(fold, fold.clock)


def test_one_event_a_batch_leaves_every_row_as_one_batch_of_all_would(policy_book):
    """Statements only their as_of moved are updated in place, their lines left: the rows end the same."""
    events = recorded_events(policy_book, [CLOSE_MARCH, ESCALATE_LATE])
    one_by_one, all_at_once = projected(policy_book, events, 1), projected(policy_book, events, len(events))
    for table in ("billing_statements", "billing_statement_lines"):
        select = f"SELECT * FROM {table} ORDER BY 1, 2, 3"
        assert one_by_one.query(select) == all_at_once.query(select) != []


@pytest.mark.parametrize("refresh_every", [1, 2, 5])
def test_refreshes_between_batches_end_as_the_pure_fold(policy_book, refresh_every):
    events = recorded_events(policy_book, [CLOSE_MARCH, ESCALATE_LATE])
    db = projected(policy_book, events, 7, refresh_every)
    fold = BillingFold(policy_book).apply_all(events)
    assert stored_statements(db) == all_statements(fold, fold.clock)
    assert marked(db) == {}


def test_a_batch_writes_no_statement_but_marks_its_customers(policy_book):
    events = recorded_events(policy_book)
    db = memory_database()
    projection = BillingProjection(db, policy_book)
    with db.transaction() as cursor:
        projection.create_tables(cursor)
        projection.apply(cursor, events)
    assert stored_statements(db) == [] and set(marked(db)) == {e.customer_id for e in events if e.type == "Opened"}


def test_marks_left_by_a_crash_before_the_refresh_are_done_by_a_new_projection(policy_book):
    events = recorded_events(policy_book, [CLOSE_MARCH, ESCALATE_LATE])
    db = memory_database()
    crashed = BillingProjection(db, policy_book)
    with db.transaction() as cursor:
        crashed.create_tables(cursor)
    for start in range(0, len(events), 4):
        with db.transaction() as cursor:
            crashed.apply(cursor, events[start : start + 4])
    left = marked(db)
    assert stored_statements(db) == [] and left != {}
    assert BillingProjection(db, policy_book).refresh() == len(left)
    fold = BillingFold(policy_book).apply_all(events)
    assert stored_statements(db) == all_statements(fold, fold.clock) and marked(db) == {}


class MarkedMeanwhile(BillingProjection):
    """Folds more events in the middle of its refresh, as another projector's batch between read and clear."""

    def __init__(self, db, book, meanwhile: list):
        super().__init__(db, book)
        self.meanwhile = meanwhile

    def _write_statements(self, cursor, fold, whole, pairs) -> None:
        super()._write_statements(cursor, fold, whole, pairs)
        if self.meanwhile:
            self.apply(cursor, self.meanwhile)
            self.meanwhile = []


def test_a_refresh_clears_only_the_marks_it_read_and_leaves_those_set_meanwhile(policy_book):
    events = recorded_events(policy_book, [CLOSE_MARCH, ESCALATE_LATE])
    late = next(i for i, e in enumerate(events) if e.type == "Escalated" and e.occurred_at.month == 4)
    db = memory_database()
    projection = MarkedMeanwhile(db, policy_book, events[late:])
    with db.transaction() as cursor:
        projection.create_tables(cursor)
        projection.apply(cursor, events[:late])
    read = marked_statements(db)
    projection.refresh()
    left = marked_statements(db)  # the late escalation's customer, marked again meanwhile: March and April
    assert {c for c, _ in left} == {"acme"} and {m for _, m in left} == {"2026-03", "2026-04"}
    assert all(count == read.get(key, 0) + 1 for key, count in left.items())
    projection.refresh()
    fold = BillingFold(policy_book).apply_all(events)
    assert stored_statements(db) == all_statements(fold, fold.clock) and marked(db) == {}


def test_a_late_event_for_a_closed_month_is_one_adjustment_line_however_often_refreshed(policy_book):
    events = recorded_events(policy_book, [CLOSE_MARCH, ESCALATE_LATE])
    lines = (
        "SELECT month, kind, reference, amount, adjusted_month FROM billing_statement_lines WHERE kind = 'adjustment'"
    )
    for refresh_every in (1, 3, None):
        db = projected(policy_book, events, 2, refresh_every)
        assert db.query(lines) == [("2026-04", "adjustment", "crm:A-6", "74.00", "2026-03")]


def test_rows_the_batch_did_not_change_are_not_written_again(policy_book):
    """A second closing of March loads every customer's March (it reaches everyone) but changes none of it."""
    events = recorded_events(policy_book, [CLOSE_MARCH])
    db = projected(policy_book, events, 1_000)
    closed_again = next(e for e in events if e.type == "MonthClosed").model_copy(update={"event_id": uuid4()})
    projection = BillingProjection(db, policy_book)
    written, write = [], projection.rows.write
    projection.rows.write = lambda cursor, changes, zone: written.append(changes) or write(cursor, changes, zone)
    with db.transaction() as cursor:
        result = projection.apply(cursor, [closed_again])
    (changes,) = written
    unchanged = not (changes.incidents or changes.callbacks or changes.subscriptions or changes.frozen)
    customers = {row[0] for row in db.query("SELECT customer_id FROM billing_subscriptions")}
    assert result.applied == 1 and unchanged and not changes.carried and set(marked(db)) == customers != set()


def test_a_batch_reads_only_the_rows_of_its_tickets_and_customers(policy_book):
    """An opening in an open month loads its customer's plans and no other customer's, no incident but its own."""
    events = recorded_events(policy_book)
    db = projected(policy_book, events[:-1], 1_000)
    projection = BillingProjection(db, policy_book)
    loads, load = [], projection._load
    projection._load = lambda *arguments: loads.append(load(*arguments)) or loads[-1]
    last = events[-1]
    with db.transaction() as cursor:
        projection.apply(cursor, [last])
    (loaded,) = loads
    assert set(loaded.subscriptions) <= {last.customer_id} and len(loaded.frozen) == len(loaded.carried) == 0
    assert set(loaded.incidents) <= {getattr(last, "ticket_id", None)}


def test_a_database_of_the_old_state_table_is_refused_until_rebuilt(policy_book, caplog):
    db = memory_database()
    with db.transaction() as cursor:
        cursor.execute("CREATE TABLE billing_customers (customer_id TEXT PRIMARY KEY, state TEXT NOT NULL)")
    with pytest.raises(LegacyBillingState, match="nettask projections rebuild billing"), db.transaction() as cursor:
        BillingProjection(db, policy_book).create_tables(cursor)
    assert "billing_customers" in caplog.text


@pytest.mark.parametrize("batch", [1, 4])
def test_statements_refreshed_after_every_batch_have_the_lines_of_one_batch_of_all(policy_book, batch):
    """Rewrites after the first write only their changed lines over the stored ones: the rows end the same."""
    events = recorded_events(policy_book, [CLOSE_MARCH, ESCALATE_LATE])
    refreshed, all_at_once = projected(policy_book, events, batch, 1), projected(policy_book, events, len(events))
    for table in ("billing_statements", "billing_statement_lines"):
        select = f"SELECT * FROM {table} ORDER BY 1, 2, 3"
        assert refreshed.query(select) == all_at_once.query(select) != []


def refreshed_in_two(book, events: list, split: int, remembered_lines: int) -> tuple[ProjectionDatabase, list]:
    """The events in two batches, each refreshed; the lines of at most `remembered_lines` statements held."""
    db = memory_database()
    projection = BillingProjection(db, book)
    projection.lines = WrittenLines(projection._line, limit=remembered_lines)
    with db.transaction() as cursor:
        projection.create_tables(cursor)
        projection.apply(cursor, events[:split])
    projection.refresh()
    written, write = [], db.write_rows
    db.write_rows = lambda cursor, table, *rest: written.append((table, len(rest[-2]))) or write(cursor, table, *rest)
    with db.transaction() as cursor:
        projection.apply(cursor, events[split:])
    projection.refresh()
    return db, [count for table, count in written if table == "billing_statement_lines"]


def test_a_rewrite_writes_only_the_lines_that_differ(policy_book):
    """The last ticket opened adds a line to its statement: the refresh writes that, not every line again, and
    the rows end as a whole rewrite of every changed statement leaves them."""
    events = recorded_events(policy_book)
    last_opened = max(i for i, e in enumerate(events) if e.type == "Opened")
    db, lines = refreshed_in_two(policy_book, events, last_opened, MAX_LINES)
    whole, all_lines = refreshed_in_two(policy_book, events, last_opened, 0)
    assert 0 < sum(lines) < sum(all_lines)
    _, over_the_bound = refreshed_in_two(policy_book, events, last_opened, 1)  # every statement has more lines
    assert over_the_bound == all_lines
    for table in ("billing_statements", "billing_statement_lines"):
        select = f"SELECT * FROM {table} ORDER BY 1, 2, 3"
        assert db.query(select) == whole.query(select) != []


def test_lines_changed_behind_the_projection_are_rewritten_whole(policy_book):
    """A statement whose stored text is not the one last written here (a rebuild, another projector) gets every
    line anew: the lines held in memory are trusted only with their text."""
    events = recorded_events(policy_book, [CLOSE_MARCH, ESCALATE_LATE])
    half = len(events) // 2
    db = memory_database()
    projection = BillingProjection(db, policy_book)
    with db.transaction() as cursor:
        projection.create_tables(cursor)
        projection.apply(cursor, events[:half])
    projection.refresh()
    with db.transaction() as cursor:
        projection.apply(cursor, events[half:])
        # Only the statements the refresh rewrites (those marked): it has no reason to read the others.
        marked_here = (
            "WHERE EXISTS (SELECT 1 FROM billing_refresh AS r "
            "WHERE r.customer_id = {t}.customer_id AND r.month IN ({t}.month, '*'))"
        )
        cursor.execute(
            f"UPDATE billing_statements SET statement = statement || ' ' {marked_here.format(t='billing_statements')}"
        )
        cursor.execute(
            f"UPDATE billing_statement_lines SET amount = '0.01' {marked_here.format(t='billing_statement_lines')}"
        )
        assert cursor.rowcount > 0
    projection.refresh()
    expected = projected(policy_book, events, len(events))
    for table in ("billing_statements", "billing_statement_lines"):
        select = f"SELECT * FROM {table} ORDER BY 1, 2, 3"
        assert db.query(select) == expected.query(select)
