"""The bench's workload: customers on plans, tickets of four commands each, and raw values of command size."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from domain import commands as c
from infra.messages import Headers, command_headers, command_value

# Monday 2 March 2026, 10:00 in Berlin: inside business hours, so every clock of the policy runs.
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PLANS = ("basic", "plus", "standard", "professional")
CUSTOMERS = 20
COMMANDS_PER_TICKET = 4
# A ticket's commands are hours apart in real traffic, so a poll batch holds commands of many tickets that the
# intake must load from the store. Waves of this many tickets keep that true: the wave's openings come first,
# then every ticket's first response, and so on, so no batch sees a ticket's whole life at once.
TICKETS_PER_WAVE = 1000
RAW_VALUE_BYTES = 300


@dataclass(frozen=True)
class Message:
    """A command as it travels on `tickets.commands`."""

    key: bytes
    value: bytes
    headers: Headers
    command_id: str


def subscriptions(run: str) -> list[c.Command]:
    """One SubscribePlan per customer, effective well before any ticket of the run."""
    return [
        c.SubscribePlan(
            command_id=uuid.uuid4(), occurred_at=T0 - timedelta(days=30), actor="crm",
            customer_id=customer(run, n), plan=PLANS[n % len(PLANS)], effective_from=T0 - timedelta(days=60),
        )
        for n in range(CUSTOMERS)
    ]  # fmt: skip


def customer(run: str, n: int) -> str:
    return f"bench-{run}-{n:02d}"


def ticket_commands(run: str, tickets: int, batch: str = "") -> list[c.Command]:
    """Open, respond, customer reply, respond again: per ticket in order, tickets interleaved in waves.

    The tickets belong to the run's customers; `batch` keeps references apart when a run opens tickets twice.
    """
    lives = [_ticket_life(run, f"{run}{batch}-{n}", n) for n in range(tickets)]
    ordered: list[c.Command] = []
    for first in range(0, tickets, TICKETS_PER_WAVE):
        wave = lives[first : first + TICKETS_PER_WAVE]
        for step in range(COMMANDS_PER_TICKET):
            ordered.extend(life[step] for life in wave)
    return ordered


def _ticket_life(run: str, reference: str, n: int) -> list[c.Command]:
    opened_at = T0 + timedelta(seconds=n % 3600)
    opening = c.OpenTicket(
        command_id=uuid.uuid4(), occurred_at=opened_at, actor="crm", source="crm", reference=reference,
        customer_id=customer(run, n % CUSTOMERS), department="trouble", severity="ABC"[n % 3], language="en",
        subject="Mail to the customer's domain is delayed by several hours",
    )  # fmt: skip
    follow_ups = (
        (c.RecordResponse, 40, "agent.kim"),
        (c.RecordCustomerReply, 90, "customer"),
        (c.RecordResponse, 130, "agent.kim"),
    )
    return [opening] + [
        kind(command_id=uuid.uuid4(), occurred_at=opened_at + timedelta(minutes=minutes), actor=actor,
             ticket_id=opening.ticket_id)
        for kind, minutes, actor in follow_ups
    ]  # fmt: skip


def messages(commands: list[c.Command]) -> list[Message]:
    return [
        Message(command.key.encode(), command_value(command), command_headers(command), str(command.command_id))
        for command in commands
    ]


def raw_values(count: int) -> list[tuple[bytes, bytes]]:
    """Keys like ticket ids and JSON values of RAW_VALUE_BYTES, about an average command's size."""
    return [(str(uuid.uuid4()).encode(), _raw_value()) for _ in range(count)]


def _raw_value() -> bytes:
    document = {
        "type": "RecordCustomerReply",
        "command_id": str(uuid.uuid4()),
        "occurred_at": T0.isoformat(),
        "actor": "customer",
        "ticket_id": str(uuid.uuid4()),
        "note": "",
    }
    document["note"] = "x" * (RAW_VALUE_BYTES - len(orjson.dumps(document)))
    return orjson.dumps(document)
