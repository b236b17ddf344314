"""Reading a batch's streams in one query gives the states read stream by stream, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from consumers.write_side import WriteSide
from domain import commands as c
from infra import store_reads
from infra.compose.desk import build_desk
from infra.store_reads import states_reader
from tests.integration.test_event_store import T0, open_ticket, subscribe


def respond(ticket_id, minutes: int) -> c.RecordResponse:
    return c.RecordResponse(
        command_id=uuid4(), occurred_at=T0 + timedelta(minutes=minutes), actor="agent", ticket_id=ticket_id
    )


def test_one_query_reads_stored_streams_and_leaves_out_new_ones(store_settings, policy_book, monkeypatch):
    monkeypatch.setattr(store_reads, "IDS_PER_QUERY", 3)  # several chunks, one of them short
    customer = f"cust-{uuid4().hex[:8]}"
    openings = [open_ticket(customer, f"T-{n}") for n in range(4)]
    desk = build_desk(store_settings, policy_book)
    WriteSide(desk).handle_batch([subscribe(customer), *openings, *(respond(o.ticket_id, 5) for o in openings[:2])])
    read = states_reader(desk)
    assert read is not None
    stored = [o.ticket_id for o in openings] + [c.customer_stream_id(customer)]
    new = [uuid4(), uuid4()]

    states = read([new[0], *stored, new[1]])

    assert set(states) == set(stored)
    assert states == {stream: desk.state(stream) for stream in stored}
    assert [states[o.ticket_id].version for o in openings] == [2, 2, 1, 1]
    desk.close()


def test_an_intake_batch_on_read_states_stores_what_per_stream_reads_store(store_settings, policy_book):
    customer = f"cust-{uuid4().hex[:8]}"
    openings = [open_ticket(customer, f"T-{n}") for n in range(3)]
    batch = [subscribe(customer), *openings, *(respond(o.ticket_id, 5) for o in openings)]
    desk = build_desk(store_settings, policy_book)
    one_query = WriteSide(desk, read_states=states_reader(desk))

    assert [o.status for o in one_query.handle_batch(batch)] == ["applied"] * len(batch)
    assert [o.status for o in WriteSide(desk).handle_batch(batch)] == ["unchanged"] * len(batch)
    fresh = WriteSide(desk, read_states=states_reader(desk))
    assert [o.status for o in fresh.handle_batch(batch)] == ["unchanged"] * len(batch)
    assert [desk.ticket(o.ticket_id).version for o in openings] == [2, 2, 2]
    desk.close()
