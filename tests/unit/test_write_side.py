"""The intake's write side: a batch saved once, decided again when another writer won the race, given up at last."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import IntegrityError

from consumers import write_side
from consumers.write_side import WriteContention, WriteSide
from domain.commands import customer_stream_id
from domain.desk import OutcomeStatus, TicketDesk
from tests.unit.builders import open_ticket, respond, shipped_book, subscribe, unique


class RacedDesk(TicketDesk):
    """A desk on which another writer wins the first `losses` saves."""

    def __init__(self, losses: int):
        super().__init__(shipped_book())
        self.losses = losses
        self.saves = 0

    def save(self, *events, **kwargs):
        self.saves += 1
        if self.saves <= self.losses:
            raise IntegrityError("another writer saved these versions first")
        return super().save(*events, **kwargs)


@pytest.fixture(autouse=True)
def no_back_off(monkeypatch):
    monkeypatch.setattr(write_side, "BACKOFF_SECONDS", 0.0)


def test_a_lost_race_is_decided_again_and_saved_once():
    desk = RacedDesk(losses=2)
    customer = unique("cust")
    opening = open_ticket(customer, "2026-03-02T10:00+01:00")

    outcomes = WriteSide(desk).handle_batch([opening, subscribe(customer, "standard")])

    assert [o.status for o in outcomes] == [OutcomeStatus.APPLIED, OutcomeStatus.APPLIED]
    assert desk.saves == 3
    assert len(list(desk.events_of(opening.ticket_id))) == 1


def test_writers_that_keep_winning_make_it_give_up():
    desk = RacedDesk(losses=write_side.MAX_CONFLICT_RETRIES)
    customer = unique("cust")

    with pytest.raises(WriteContention):
        WriteSide(desk).handle(subscribe(customer, "standard"))
    assert list(desk.recorded_events()) == []


def test_a_remembered_ticket_is_not_read_back_but_a_no_op_on_it_is_checked_on_the_store():
    desk = TicketDesk(shipped_book())
    side = WriteSide(desk)
    customer = unique("cust")
    opening = open_ticket(customer, "2026-03-02T10:00+01:00")
    side.handle_batch([subscribe(customer, "standard"), opening])
    reads = []
    original = desk.state
    desk.state = lambda stream: reads.append(stream) or original(stream)  # type: ignore[method-assign]
    response = respond(opening.ticket_id, "2026-03-02T11:00+01:00")

    assert side.handle(response).status is OutcomeStatus.APPLIED
    assert reads == []
    # A repeat is a no-op on the remembered ticket, which might be stale: decided again on the store's state.
    assert side.handle(response).status is OutcomeStatus.UNCHANGED
    assert reads == [opening.ticket_id]


class CountingReader:
    """A fake `StatesReader` on a desk's store: notes each call, answers only streams that have events."""

    def __init__(self, desk: TicketDesk):
        self.desk = desk
        self.calls: list[list] = []

    def __call__(self, streams):
        self.calls.append(list(streams))
        return {stream: state for stream in streams if (state := self.desk.state(stream)) is not None}


def test_a_batch_reads_every_stream_it_needs_in_one_call_and_absent_ones_are_new():
    desk = TicketDesk(shipped_book())
    customer = unique("cust")
    WriteSide(desk).handle(subscribe(customer, "standard"))
    reader = CountingReader(desk)
    openings = [open_ticket(customer, "2026-03-02T10:00+01:00") for _ in range(3)]
    replies = [respond(opening.ticket_id, "2026-03-02T11:00+01:00") for opening in openings]

    outcomes = WriteSide(desk, read_states=reader).handle_batch([*openings, *replies])

    assert [o.status for o in outcomes] == [OutcomeStatus.APPLIED] * 6
    # One read for the batch: the three new tickets and the customer's plans, each once.
    [streams] = reader.calls
    assert sorted(streams) == sorted([*(o.ticket_id for o in openings), customer_stream_id(customer)])
    assert all(desk.ticket(o.ticket_id).version == 2 for o in openings)


def test_kept_states_are_not_read_and_a_lost_race_reads_the_batch_afresh_in_one_call():
    desk = RacedDesk(losses=0)
    customer = unique("cust")
    opening = open_ticket(customer, "2026-03-02T10:00+01:00")
    reader = CountingReader(desk)
    side = WriteSide(desk, read_states=reader)
    side.handle_batch([subscribe(customer, "standard"), opening])
    reader.calls.clear()
    desk.losses, desk.saves = 1, 0

    outcome = side.handle(respond(opening.ticket_id, "2026-03-02T11:00+01:00"))

    assert outcome.status is OutcomeStatus.APPLIED
    # First attempt on the kept ticket (no read); after the conflict, the ticket read from the store, once.
    assert reader.calls == [[opening.ticket_id]]
    assert desk.ticket(opening.ticket_id).version == 2
