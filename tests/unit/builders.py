"""Test helpers: the shipped policy, an in-memory desk with a customer on a plan, and command builders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from importlib.resources import files
from uuid import UUID, uuid4

from domain import commands as cmd
from domain.desk import Outcome, TicketDesk
from domain.events import DomainEvent
from domain.policy import PolicyBook, parse_policy
from domain.sla import FIRST_RESPONSE, Metric
from domain.ticket import Ticket
from domain.watch import WATCHDOG_SOURCE

ACTOR = "agent.test"
# Customers subscribe well before any ticket of the tests, so the plan is in force at every opening.
SUBSCRIBED_AT = "2026-01-01T00:00+01:00"

When = str | datetime


def at(when: When) -> datetime:
    """An instant from ISO text with its offset, e.g. "2026-03-02T10:00+01:00" (Berlin winter time)."""
    return when if isinstance(when, datetime) else datetime.fromisoformat(when)


def shipped_policy_text() -> str:
    return files("domain").joinpath("data/policy.toml").read_text(encoding="utf-8")


@cache
def shipped_book() -> PolicyBook:
    """The policy the engine ships with: version 2021-07-01."""
    return parse_policy(shipped_policy_text(), source="domain/data/policy.toml")


def new_desk(book: PolicyBook | None = None) -> TicketDesk:
    """A TicketDesk on the in-memory event store (no env given)."""
    return TicketDesk(book or shipped_book())


def unique(prefix: str) -> str:
    """A random name per test, so no two tests share a customer or a reference."""
    return f"{prefix}-{uuid4().hex[:12]}"


# --- command builders: a random command id unless one is given, and an explicit time -----------------


def _common(when: When, command_id: UUID | None) -> dict:
    return {"command_id": command_id or uuid4(), "occurred_at": at(when), "actor": ACTOR}


def subscribe(
    customer_id: str, plan: str, effective_from: When = SUBSCRIBED_AT, command_id: UUID | None = None
) -> cmd.SubscribePlan:
    return cmd.SubscribePlan(
        **_common(effective_from, command_id), customer_id=customer_id, plan=plan, effective_from=at(effective_from)
    )


def open_ticket(
    customer_id: str,
    when: When,
    severity: str = "C",
    language: str = "en",
    department: str = "trouble",
    channel: str = "ticket",
    reference: str | None = None,
    command_id: UUID | None = None,
) -> cmd.OpenTicket:
    return cmd.OpenTicket(
        **_common(when, command_id),
        source="portal",
        reference=reference or unique("REF"),
        customer_id=customer_id,
        department=department,
        channel=channel,
        severity=severity,
        language=language,
        subject="The web shop answers 503",
    )


def escalate(
    ticket_id: UUID, when: When, to: str | None = None, phone: bool = False, command_id: UUID | None = None
) -> cmd.EscalateTicket:
    return cmd.EscalateTicket(**_common(when, command_id), ticket_id=ticket_id, to_severity=to, escalation_phone=phone)


def change_severity(
    ticket_id: UUID, when: When, to: str, reason: str = "customer found a workaround", command_id: UUID | None = None
) -> cmd.ChangeSeverity:
    return cmd.ChangeSeverity(**_common(when, command_id), ticket_id=ticket_id, to_severity=to, reason=reason)


def respond(ticket_id: UUID, when: When, command_id: UUID | None = None) -> cmd.RecordResponse:
    return cmd.RecordResponse(**_common(when, command_id), ticket_id=ticket_id)


def customer_reply(ticket_id: UUID, when: When, command_id: UUID | None = None) -> cmd.RecordCustomerReply:
    return cmd.RecordCustomerReply(**_common(when, command_id), ticket_id=ticket_id)


def await_customer(
    ticket_id: UUID, when: When, reason: str = "waiting for the customer's logs", command_id: UUID | None = None
) -> cmd.AwaitCustomer:
    return cmd.AwaitCustomer(**_common(when, command_id), ticket_id=ticket_id, reason=reason)


def resume(ticket_id: UUID, when: When, command_id: UUID | None = None) -> cmd.ResumeTicket:
    return cmd.ResumeTicket(**_common(when, command_id), ticket_id=ticket_id)


def request_callback(ticket_id: UUID, when: When, command_id: UUID | None = None) -> cmd.RequestCallback:
    return cmd.RequestCallback(**_common(when, command_id), ticket_id=ticket_id, note="call +49 30 1234567")


def complete_callback(ticket_id: UUID, when: When, command_id: UUID | None = None) -> cmd.CompleteCallback:
    return cmd.CompleteCallback(**_common(when, command_id), ticket_id=ticket_id)


def resolve(ticket_id: UUID, when: When, command_id: UUID | None = None) -> cmd.ResolveTicket:
    return cmd.ResolveTicket(**_common(when, command_id), ticket_id=ticket_id, resolution="restarted the pool")


def reopen(ticket_id: UUID, when: When, command_id: UUID | None = None) -> cmd.ReopenTicket:
    return cmd.ReopenTicket(**_common(when, command_id), ticket_id=ticket_id, reason="the 503s are back")


def close(ticket_id: UUID, when: When, command_id: UUID | None = None) -> cmd.CloseTicket:
    return cmd.CloseTicket(**_common(when, command_id), ticket_id=ticket_id)


def withdraw(ticket_id: UUID, when: When, command_id: UUID | None = None) -> cmd.WithdrawTicket:
    return cmd.WithdrawTicket(**_common(when, command_id), ticket_id=ticket_id, reason="fixed it ourselves")


def record_breach(
    ticket_id: UUID, when: When, metric: str = FIRST_RESPONSE, command_id: UUID | None = None
) -> cmd.RecordSlaBreach:
    return cmd.RecordSlaBreach(**_common(when, command_id), ticket_id=ticket_id, metric=metric, source=WATCHDOG_SOURCE)


def flag_at_risk(
    ticket_id: UUID, when: When, metric: str = FIRST_RESPONSE, command_id: UUID | None = None
) -> cmd.FlagSlaAtRisk:
    return cmd.FlagSlaAtRisk(**_common(when, command_id), ticket_id=ticket_id, metric=metric, source=WATCHDOG_SOURCE)


def close_month(
    month: str, when: When, source: str | None = "nettask-operator", command_id: UUID | None = None
) -> cmd.CloseMonth:
    return cmd.CloseMonth(**_common(when, command_id), month=month, source=source)


# Every command on an existing ticket, built the same way: (ticket_id, when) -> command.
TICKET_COMMANDS: dict[str, Callable[[UUID, When], cmd.TicketCommand]] = {
    "EscalateTicket": lambda ticket_id, when: escalate(ticket_id, when, to="A"),
    "ChangeSeverity": lambda ticket_id, when: change_severity(ticket_id, when, to="C"),
    "RecordResponse": respond,
    "RecordCustomerReply": customer_reply,
    "AwaitCustomer": await_customer,
    "ResumeTicket": resume,
    "RequestCallback": request_callback,
    "CompleteCallback": complete_callback,
    "ResolveTicket": resolve,
    "ReopenTicket": reopen,
    "CloseTicket": close,
    "WithdrawTicket": withdraw,
    "RecordSlaBreach": record_breach,
    "FlagSlaAtRisk": flag_at_risk,
}


# --- one customer, one ticket ---------------------------------------------------------------------------


class TicketStory:
    """One customer and one ticket on a desk: send commands, then read the ticket's state and events."""

    def __init__(self, desk: TicketDesk, customer_id: str, opening: Outcome):
        self.desk = desk
        self.customer_id = customer_id
        self.opening = opening
        self.id: UUID = opening.command.ticket_id

    def send(self, command: cmd.Command) -> Outcome:
        return self.desk.handle(command)

    @property
    def state(self) -> Ticket:
        ticket = self.desk.ticket(self.id)
        assert ticket is not None, f"ticket was not opened: {self.opening.reason}"
        return ticket

    def metric(self, name: str = FIRST_RESPONSE) -> Metric:
        return self.state.metrics[name]

    def due(self, name: str = FIRST_RESPONSE) -> datetime | None:
        return self.metric(name).due_at

    def events(self) -> list[DomainEvent]:
        return list(self.desk.events_of(self.id))


def opened(
    plan: str = "standard",
    severity: str = "C",
    language: str = "en",
    at: When = "2026-03-02T10:00+01:00",
    channel: str = "ticket",
    department: str = "trouble",
    desk: TicketDesk | None = None,
) -> TicketStory:
    """A new customer on `plan` since SUBSCRIBED_AT, and the ticket it opens at `at` (applied or refused)."""
    desk = desk or new_desk()
    customer_id = unique("cust")
    subscription = desk.handle(subscribe(customer_id, plan))
    assert subscription.status == "applied", subscription.reason
    command = open_ticket(customer_id, at, severity, language, department, channel)
    return TicketStory(desk, customer_id, desk.handle(command))


def minutes(count: int) -> timedelta:
    return timedelta(minutes=count)
