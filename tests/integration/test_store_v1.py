"""Events stored by the first version of the write path still load, and the desk decides on them as on fresh ones.

tests/fixtures/store-v1.sqlite was written once by that version (commit c72d152): the golden corpus's first 400
commands and its three month closings, each through `TicketDesk.handle`, into a SQLite event store (335 events).
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import orjson

from domain import commands as c
from domain.desk import OutcomeStatus, TicketDesk
from domain.events import TicketEvent
from infra.policy_files import load_policy
from tests.golden_corpus import Corpus

FIXTURE = Path(__file__).parents[1] / "fixtures" / "store-v1.sqlite"
STORED_COMMANDS = 400
STORED_EVENTS = 335


def stored_commands() -> list[c.Command]:
    commands = list(Corpus().commands())
    return commands[:STORED_COMMANDS] + commands[-3:]


def desk_on(path: Path | None) -> TicketDesk:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)} if path else {}
    return TicketDesk(load_policy(None), env=env)


def old_store(tmp_path: Path) -> TicketDesk:
    copy = tmp_path / "store-v1.sqlite"
    shutil.copyfile(FIXTURE, copy)
    return desk_on(copy)


def as_json(events) -> list[dict]:
    return [orjson.loads(orjson.dumps(e.model_dump(mode="json"))) for e in events]


def test_every_stored_event_loads_and_every_ticket_state_is_rebuilt(tmp_path):
    desk = old_store(tmp_path)
    events = list(desk.recorded_events())
    tickets = {e.ticket_id for e in events if isinstance(e, TicketEvent)}

    assert len(events) == STORED_EVENTS
    assert tickets
    for ticket_id in tickets:
        ticket = desk.ticket(ticket_id)
        assert ticket is not None
        assert ticket.version == len(list(desk.events_of(ticket_id)))


def test_the_stored_commands_are_recognised_as_repeats(tmp_path):
    desk = old_store(tmp_path)
    fresh = desk_on(None)
    applied = [command for command in stored_commands() if fresh.handle(command).status is OutcomeStatus.APPLIED]

    assert len(applied) > 300
    for command in applied:
        assert desk.handle(command).status is OutcomeStatus.UNCHANGED, command


def test_the_desk_decides_new_commands_on_stored_tickets_as_on_fresh_ones(tmp_path):
    desk = old_store(tmp_path)
    fresh = desk_on(None)
    for command in stored_commands():
        fresh.handle(command)
    openings = [command for command in stored_commands() if isinstance(command, c.OpenTicket)]
    for opening in openings:
        for kind in (c.RecordCustomerReply, c.RecordResponse):
            later = kind(
                command_id=uuid4(), occurred_at=opening.occurred_at + timedelta(days=20), actor="agent.test",
                ticket_id=opening.ticket_id,
            )  # fmt: skip
            on_old, on_fresh = desk.handle(later), fresh.handle(later)
            assert (on_old.status, on_old.reason) == (on_fresh.status, on_fresh.reason)
            assert as_json(on_old.events) == as_json(on_fresh.events)
