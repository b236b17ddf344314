"""One valid command of every type, for the AsyncAPI document and the README."""

from __future__ import annotations

from uuid import UUID, uuid5

from domain.commands import Command, parse_command, ticket_id_for
from domain.watch import WATCHDOG_SOURCE
from infra import messages
from infra.contract.schemas import COMMAND_NAMES, Json

EXAMPLE_NAMESPACE = UUID("3b9d7c1e-5a2f-4e60-8b14-c0d9e8f7a6b5")
EXAMPLE_SOURCE, EXAMPLE_REFERENCE = "portal", "T-1001"
# One of the sources the shipped policy accepts CloseMonth from.
CLOSING_SOURCE = "nettask-operator"
EXAMPLE_ACTORS = {
    "OpenTicket": "portal",
    "SubscribePlan": "billing",
    "RecordSlaBreach": "watchdog",
    "FlagSlaAtRisk": "watchdog",
    "CloseMonth": "operator.jane",
}
EXAMPLE_FIELDS: dict[str, Json] = {
    "OpenTicket": {
        "source": EXAMPLE_SOURCE, "reference": EXAMPLE_REFERENCE, "customer_id": "cust-42", "department": "trouble",
        "channel": "ticket", "severity": "C", "language": "en", "subject": "The web shop answers 503",
    },
    "EscalateTicket": {"to_severity": "B", "escalation_phone": False},
    "ChangeSeverity": {"to_severity": "C", "reason": "only the test shop is affected"},
    "RecordResponse": {},
    "RecordCustomerReply": {},
    "AwaitCustomer": {"reason": "waiting for the customer's server logs"},
    "ResumeTicket": {"reason": "logs received"},
    "RequestCallback": {"note": "call back after 14:00"},
    "CompleteCallback": {},
    "ResolveTicket": {"resolution": "restarted the PHP workers"},
    "ReopenTicket": {"reason": "the 503 came back"},
    "CloseTicket": {},
    "WithdrawTicket": {"reason": "opened by mistake"},
    "RecordSlaBreach": {"metric": "first_response", "source": WATCHDOG_SOURCE},
    "FlagSlaAtRisk": {"metric": "first_response", "source": WATCHDOG_SOURCE},
    "SubscribePlan": {"customer_id": "cust-42", "plan": "standard", "effective_from": "2026-01-01T00:00:00+01:00"},
    "CloseMonth": {"month": "2026-02", "source": CLOSING_SOURCE},
}  # fmt: skip


def example_commands() -> tuple[Command, ...]:
    """One command of every type, in union order; validated by the real models."""
    return tuple(parse_command(example_data(name, minute)) for minute, name in enumerate(COMMAND_NAMES))


def example_data(name: str, minute: int) -> Json:
    data: Json = {
        "type": name,
        "command_id": str(uuid5(EXAMPLE_NAMESPACE, name)),
        "occurred_at": f"2026-03-02T10:{minute:02d}:00+01:00",
        "actor": EXAMPLE_ACTORS.get(name, "agent.jane"),
    }
    if name not in ("OpenTicket", "SubscribePlan", "CloseMonth"):
        data["ticket_id"] = str(ticket_id_for(EXAMPLE_SOURCE, EXAMPLE_REFERENCE))
    return {**data, **EXAMPLE_FIELDS[name]}


def example_value(command: Command) -> Json:
    """A command's JSON as published, `type` first for the reader."""
    value = command.model_dump(mode="json")
    return {"type": value.pop("type"), **value}


def example_headers(command: Command) -> dict[str, str]:
    return {name: value.decode() for name, value in messages.command_headers(command)}
