"""The SLA view with no broker: the fold equals the aggregate, repeats change nothing, the queries answer right."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from domain.sla import FIRST_RESPONSE, MetricState, next_response
from domain.ticket import TicketStatus
from projections.database import ProjectionDatabase
from projections.sla import queries
from projections.sla.projection import SlaProjection
from projections.sla.view import dump_state, fold, load_state, metric_rows, ticket_row
from tests.unit.builders import (
    TicketStory,
    at,
    await_customer,
    customer_reply,
    escalate,
    new_desk,
    opened,
    record_breach,
    resolve,
    respond,
    resume,
    withdraw,
)

OPENED = "2026-03-02T10:00+01:00"  # standard plan, severity C: first response due 14:00, at risk from 13:00


@pytest.fixture
def db() -> Iterator[ProjectionDatabase]:
    """The projections' tables in an in-memory SQLite database."""
    database = ProjectionDatabase(lambda: sqlite3.connect(":memory:", isolation_level=None))
    database.create_schema()
    with database.transaction() as cursor:
        SlaProjection(database).create_tables(cursor)
    yield database
    database.close()


def project(db: ProjectionDatabase, *stories: TicketStory):
    """Every event of the stories applied in one batch, as the projector would."""
    with db.transaction() as cursor:
        return SlaProjection(db).apply(cursor, [e for story in stories for e in story.events()])


def a_long_story() -> TicketStory:
    """A late first response (a breach), a customer reply, a pause and a resume, an escalation, a resolution."""
    story = opened(at=OPENED)
    for command in (
        respond(story.id, "2026-03-02T15:00+01:00"),
        customer_reply(story.id, "2026-03-03T09:00+01:00"),
        await_customer(story.id, "2026-03-03T09:30+01:00"),
        resume(story.id, "2026-03-03T11:00+01:00"),
        escalate(story.id, "2026-03-03T11:10+01:00", to="B"),
        resolve(story.id, "2026-03-03T12:00+01:00"),
    ):
        assert story.send(command).status == "applied"
    return story


def fold_all(story: TicketStory):
    view = None
    for event in story.events():
        view = fold(view, event)
    return view


def test_the_fold_says_what_the_aggregate_says():
    story = a_long_story()
    view = fold_all(story)
    aggregate = story.state

    assert view.ticket.status is aggregate.status is TicketStatus.RESOLVED
    assert view.ticket.version == aggregate.version == len(story.events())
    for row in metric_rows(view):
        metric = aggregate.metrics[row.metric]
        assert (row.state, row.due_at, row.at_risk_at) == (metric.state, metric.due_at, metric.at_risk_at)
        assert row.target_minutes == metric.target.total_seconds() // 60


def test_a_late_reply_is_a_breach_at_the_due_time_and_its_lateness_is_counted():
    view = fold_all(a_long_story())
    first = next(row for row in metric_rows(view) if row.metric == FIRST_RESPONSE)

    assert first.state is MetricState.BREACHED
    assert first.breached_at == first.due_at == at("2026-03-02T14:00+01:00")
    assert first.answered_at == at("2026-03-02T15:00+01:00")
    assert first.minutes_late == 60
    assert first.decided_month == "2026-03"


def test_resolving_meets_the_next_response_and_records_the_ticket_resolved():
    view = fold_all(a_long_story())
    second = next(row for row in metric_rows(view) if row.metric == next_response(1))

    assert second.state is MetricState.MET
    assert second.met_at == at("2026-03-03T12:00+01:00")
    assert ticket_row(view).resolved_at == at("2026-03-03T12:00+01:00")
    assert ticket_row(view).severity == "B"


def test_the_stored_state_folds_on_as_the_original_does():
    story = a_long_story()
    events = story.events()
    view = None
    for event in events[:3]:
        view = fold(view, event)
    view = load_state(dump_state(view))
    for event in events[3:]:
        view = fold(view, event)

    assert metric_rows(view) == metric_rows(fold_all(story))


def test_a_withdrawn_ticket_cancels_its_metric():
    story = opened(at=OPENED)
    story.send(withdraw(story.id, "2026-03-02T10:30+01:00"))

    [row] = metric_rows(fold_all(story))
    assert row.state is MetricState.CANCELLED


def test_repeated_events_change_nothing(db):
    story = a_long_story()
    first = project(db, story)
    before = (queries.find_ticket(db, str(story.id)), queries.metrics_of(db, str(story.id)))
    again = project(db, story)

    count = len(story.events())
    assert (first.applied, first.repeats, again.applied, again.repeats) == (count, 0, 0, count)
    assert (queries.find_ticket(db, str(story.id)), queries.metrics_of(db, str(story.id))) == before
    assert len(queries.timeline(db, str(story.id))) == count


def test_an_event_after_a_gap_in_the_versions_is_a_failure_not_applied(db):
    story = a_long_story()
    events = story.events()
    with db.transaction() as cursor:
        result = SlaProjection(db).apply(cursor, [events[0], events[2]])

    assert result.applied == 1
    [failure] = result.failures
    assert (failure.kind, failure.event.originator_version) == ("version-gap", 3)


def test_an_event_the_domain_cannot_apply_is_a_failure(db):
    story = a_long_story()
    with db.transaction() as cursor:
        result = SlaProjection(db).apply(cursor, [story.events()[1]])  # no ticket yet: only an opening starts one

    assert [f.kind for f in result.failures] == ["version-gap"]


def test_tickets_are_found_by_id_or_reference_and_filtered(db):
    story = a_long_story()
    project(db, story)
    by_id = queries.find_ticket(db, str(story.id))

    assert by_id is not None
    assert queries.find_ticket(db, by_id["reference"]) == by_id
    assert queries.find_ticket(db, "REF-unknown") is None
    assert [t["ticket_id"] for t in queries.tickets(db, customer=story.customer_id)] == [str(story.id)]
    assert queries.tickets(db, status=TicketStatus.OPEN) == []


def test_breached_now_names_recorded_breaches_and_running_metrics_past_due(db):
    desk = new_desk()
    recorded = opened(at=OPENED, desk=desk)
    recorded.send(record_breach(recorded.id, "2026-03-02T14:05+01:00"))
    overdue = opened(at=OPENED, desk=desk)
    answered = opened(at=OPENED, desk=desk)
    answered.send(respond(answered.id, "2026-03-02T11:00+01:00"))
    project(db, recorded, overdue, answered)

    found = queries.breached_now(db, at("2026-03-02T14:10+01:00"))
    assert {(row["ticket_id"], row["recorded"]) for row in found} == {
        (str(recorded.id), True),
        (str(overdue.id), False),
    }
    assert queries.breached_now(db, at("2026-03-02T13:59+01:00")) == [r for r in found if r["recorded"]]


def test_at_risk_from_the_at_risk_time_until_the_due_time(db):
    story = opened(at=OPENED)
    project(db, story)

    assert queries.at_risk_now(db, at("2026-03-02T12:59+01:00")) == []
    assert [r["metric"] for r in queries.at_risk_now(db, at("2026-03-02T13:00+01:00"))] == [FIRST_RESPONSE]
    assert [r["metric"] for r in queries.at_risk_now(db, at("2026-03-02T14:00+01:00"))] == [FIRST_RESPONSE]
    assert queries.at_risk_now(db, at("2026-03-02T14:01+01:00")) == []


def test_the_work_queue_has_severity_a_first_then_the_earliest_due(db):
    desk = new_desk()
    late_c = opened(at="2026-03-02T11:00+01:00", desk=desk)
    early_c = opened(at=OPENED, desk=desk)
    severe = opened(at="2026-03-02T11:30+01:00", severity="A", desk=desk)
    done = opened(at=OPENED, desk=desk)
    done.send(resolve(done.id, "2026-03-02T10:30+01:00"))
    project(db, late_c, early_c, severe, done)

    queue = queries.work_queue(db)
    assert [row["ticket_id"] for row in queue] == [str(severe.id), str(early_c.id), str(late_c.id)]
    assert queue[1]["next_due"] == at("2026-03-02T14:00+01:00")


def test_breach_history_counts_decided_metrics_and_the_breach_rate_per_group(db):
    desk = new_desk()
    breached = opened(at=OPENED, desk=desk)
    breached.send(respond(breached.id, "2026-03-02T15:00+01:00"))
    met = opened(at=OPENED, desk=desk)
    met.send(respond(met.id, "2026-03-02T11:00+01:00"))
    running = opened(at=OPENED, desk=desk)
    project(db, breached, met, running)

    rows = {row["customer_id"]: row for row in queries.breach_history(db)}
    assert set(rows) == {breached.customer_id, met.customer_id}
    assert (rows[breached.customer_id]["breached"], rows[breached.customer_id]["breach_rate"]) == (1, 1.0)
    assert (rows[met.customer_id]["decided"], rows[met.customer_id]["breach_rate"]) == (1, 0.0)
    assert rows[met.customer_id]["month"] == "2026-03"


def test_event_by_event_a_batch_writes_only_the_metric_rows_it_changed_and_they_end_as_one_batch_of_all(db):
    story = a_long_story()
    events = story.events()
    projection, written, write = SlaProjection(db), [], db.write_rows

    def counted(cursor, table, *rest):
        if table == "sla_metrics":
            written.append(len(rest[-2]))
        write(cursor, table, *rest)

    db.write_rows = counted
    for event in events:  # one event a batch: the stored state is the one before it
        with db.transaction() as cursor:
            projection.apply(cursor, [event])
    metrics = db.query("SELECT * FROM sla_metrics ORDER BY ticket_id, metric")
    every_metric_each_time = sum(len(fold_upto(events, n).ticket.metrics) for n in range(1, len(events) + 1))
    assert sum(written) < every_metric_each_time
    other = ProjectionDatabase(lambda: sqlite3.connect(":memory:", isolation_level=None))
    with other.transaction() as cursor:
        SlaProjection(other).create_tables(cursor)
    with other.transaction() as cursor:
        SlaProjection(other).apply(cursor, events)
    assert metrics == other.query("SELECT * FROM sla_metrics ORDER BY ticket_id, metric") != []


def fold_upto(events: list, count: int):
    view = None
    for event in events[:count]:
        view = fold(view, event)
    return view
