"""The event store round trip and write conflicts, the same tests on SQLite and on PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from uuid import uuid4

from consumers.write_side import WriteSide
from domain import commands as c
from domain.events import Opened, Responded
from infra.compose.desk import build_desk

T0 = datetime.fromisoformat("2026-03-02T10:00:00+01:00")


def subscribe(customer: str, plan: str = "standard") -> c.SubscribePlan:
    return c.SubscribePlan(
        command_id=uuid4(), occurred_at=T0, actor="crm", customer_id=customer, plan=plan,
        effective_from=T0 - timedelta(days=60),
    )  # fmt: skip


def open_ticket(customer: str, reference: str) -> c.OpenTicket:
    return c.OpenTicket(
        command_id=uuid4(), occurred_at=T0, actor="crm", source="crm", reference=reference,
        customer_id=customer, department="trouble", severity="B", language="en", subject="site down",
    )  # fmt: skip


def test_events_survive_a_restart_and_repeats_change_nothing(store_settings, policy_book):
    customer = f"cust-{uuid4().hex[:8]}"
    opening = open_ticket(customer, "T-1")
    reply = c.RecordResponse(
        command_id=uuid4(), occurred_at=T0 + timedelta(hours=1), actor="agent", ticket_id=opening.ticket_id
    )
    desk = build_desk(store_settings, policy_book)
    assert [o.status for o in WriteSide(desk).handle_batch([subscribe(customer), opening, reply])] == ["applied"] * 3
    desk.close()

    reopened = build_desk(store_settings, policy_book)
    stored = list(reopened.events_of(opening.ticket_id))
    assert [type(e) for e in stored] == [Opened, Responded]
    assert stored[0].deadlines[0].due_at == datetime.fromisoformat("2026-03-02T14:00:00+01:00")
    assert reopened.handle(opening).status == "unchanged"
    assert reopened.handle(reply).status == "unchanged"
    assert reopened.ticket(opening.ticket_id).version == 2
    reopened.close()


def test_concurrent_writers_to_one_ticket_lose_nothing(store_settings, policy_book):
    customer = f"cust-{uuid4().hex[:8]}"
    opening = open_ticket(customer, "T-2")
    setup = build_desk(store_settings, policy_book)
    WriteSide(setup).handle_batch([subscribe(customer), opening])
    replies = [
        c.RecordCustomerReply(
            command_id=uuid4(), occurred_at=T0 + timedelta(minutes=n), actor="customer", ticket_id=opening.ticket_id
        )
        for n in range(1, 41)
    ]
    desks = [build_desk(store_settings, policy_book) for _ in range(4)]
    writers = [WriteSide(desk) for desk in desks]

    def apply(n: int) -> str:
        return writers[n % 4].handle(replies[n]).status

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(apply, range(len(replies))))

    assert statuses == ["applied"] * len(replies)
    ticket = setup.ticket(opening.ticket_id)
    assert ticket.version == 1 + len(replies)
    assert {r.command_id for r in replies} <= ticket.seen_commands
    versions = [e.originator_version for e in setup.events_of(opening.ticket_id)]
    assert versions == list(range(1, len(replies) + 2))
    for desk in (setup, *desks):
        desk.close()


def test_a_batch_that_refuses_one_command_still_saves_the_others(store_settings, policy_book):
    customer = f"cust-{uuid4().hex[:8]}"
    good = open_ticket(customer, "T-3")
    bad = open_ticket(customer, "T-4").model_copy(update={"department": "guidance"})
    desk = build_desk(store_settings.model_copy(), policy_book)
    basic = subscribe(customer, plan="basic")
    outcomes = WriteSide(desk).handle_batch([basic, good, bad])
    assert [o.status for o in outcomes] == ["applied", "applied", "refused"]
    assert "plan basic does not include department guidance" in outcomes[2].reason
    assert desk.ticket(good.ticket_id) is not None
    assert desk.ticket(bad.ticket_id) is None
    desk.close()


def test_a_write_side_that_remembers_states_still_sees_other_writers(store_settings, policy_book):
    """Two intakes on one store (a rebalance moved a partition): remembered states must never decide wrongly."""
    customer = f"cust-{uuid4().hex[:8]}"
    opening = open_ticket(customer, "T-5")
    ticket = opening.ticket_id
    desks = build_desk(store_settings, policy_book), build_desk(store_settings, policy_book)
    first, second = WriteSide(desks[0]), WriteSide(desks[1])

    def command(kind, minutes: int, **fields):
        return kind(
            command_id=uuid4(), occurred_at=T0 + timedelta(minutes=minutes), actor="agent", ticket_id=ticket, **fields
        )

    first.handle_batch([subscribe(customer), opening, command(c.ResolveTicket, 5, resolution="restarted")])
    # A plan change through another intake counts at once for the next ticket `first` opens.
    plan_change = subscribe(customer, plan="professional").model_copy(
        update={"effective_from": T0 + timedelta(hours=1)}
    )
    assert second.handle(plan_change).status == "applied"
    later = open_ticket(customer, "T-6").model_copy(update={"occurred_at": T0 + timedelta(hours=2)})
    assert first.handle(later).status == "applied"
    assert desks[0].ticket(later.ticket_id).plan == "professional"

    assert second.handle(command(c.ReopenTicket, 10, reason="still down")).status == "applied"
    # `first` remembers the ticket as resolved; a customer reply is only allowed on the reopened ticket.
    assert first.handle(command(c.RecordCustomerReply, 15)).status == "applied"
    # `second` remembers version 2; `first` wrote since: the store refuses the stale write, and it is redone.
    assert second.handle(command(c.RecordResponse, 20)).status == "applied"
    repeated = command(c.AwaitCustomer, 25, reason="need logs")
    assert second.handle(repeated).status == "applied"
    assert first.handle(repeated).status == "unchanged"
    versions = [e.originator_version for e in desks[0].events_of(ticket)]
    assert versions == list(range(1, 7))
    for desk in desks:
        desk.close()


def test_the_process_environment_cannot_change_how_events_are_stored(store_settings, policy_book, monkeypatch):
    # eventsourcing reads its settings from the process environment too: these would compress the stored
    # events, swap the mapper, or move the store, and the relay would forward something else than the contract.
    monkeypatch.setenv("COMPRESSOR_TOPIC", "eventsourcing.compressor:ZlibCompressor")
    monkeypatch.setenv("MAPPER_TOPIC", "eventsourcing.persistence:Mapper")
    monkeypatch.setenv("PERSISTENCE_MODULE", "eventsourcing.popo")
    customer = f"cust-{uuid4().hex[:8]}"
    desk = build_desk(store_settings, policy_book)
    try:
        desk.handle(subscribe(customer))
        stored = desk.recorder.select_events(c.customer_stream_id(customer))
    finally:
        desk.close()

    assert stored and stored[0].state.startswith(b'{"originator_id":')
    assert type(desk.mapper).__name__ == "PydanticMapper"
