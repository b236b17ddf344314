"""Ticket and customer events: immutable facts in the past tense, each self-sufficient for every projection."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from pydantic import AwareDatetime, Field

from domain.frozen import Frozen
from domain.policy import Band, Channel, ClockKind, Severity


class DomainEvent(Frozen):
    """What every stored event carries: its stream position, its id, who did it, when, and why (the command)."""

    schema_version: ClassVar[int] = 1

    originator_id: UUID
    originator_version: int = Field(ge=1)
    event_id: UUID
    command_id: UUID
    actor: str
    occurred_at: AwareDatetime
    # The command's fingerprint, so a reused command id with another body is recognised (absent: older events).
    command_digest: str | None = None

    @property
    def timestamp(self) -> datetime:
        return self.occurred_at

    @property
    def type(self) -> str:
        return type(self).__name__


class Deadline(Frozen):
    """An SLA metric's plan as decided by an event: what it targets, on which clock, and when it falls due."""

    metric: str
    target_minutes: int
    clock: ClockKind
    due_at: AwareDatetime
    at_risk_at: AwareDatetime
    policy_version: str


class TicketEvent(DomainEvent):
    ticket_id: UUID
    customer_id: str


class Opened(TicketEvent):
    source: str
    reference: str
    department: str
    channel: Channel
    severity: Severity
    language: str
    subject: str
    plan: str
    policy_version: str
    band: Band
    incident: bool
    target_minutes: int
    clock: ClockKind
    deadlines: tuple[Deadline, ...]


class Escalated(TicketEvent):
    from_severity: Severity
    to_severity: Severity
    escalation_phone: bool
    target_minutes: int
    clock: ClockKind
    deadlines: tuple[Deadline, ...]


class SeverityChanged(TicketEvent):
    from_severity: Severity
    to_severity: Severity
    reason: str
    target_minutes: int
    clock: ClockKind
    deadlines: tuple[Deadline, ...]


class Responded(TicketEvent):
    metrics_met: tuple[str, ...]


class CustomerReplied(TicketEvent):
    deadlines: tuple[Deadline, ...]


class AwaitingCustomer(TicketEvent):
    reason: str
    metrics_paused: tuple[str, ...]


class Resumed(TicketEvent):
    reason: str
    deadlines: tuple[Deadline, ...]


class CallbackRequested(TicketEvent):
    note: str


class CallbackDone(TicketEvent):
    requested_event_id: UUID


class Resolved(TicketEvent):
    resolution: str
    metrics_met: tuple[str, ...]


class Reopened(TicketEvent):
    reason: str
    deadlines: tuple[Deadline, ...]


class Closed(TicketEvent):
    pass


class Withdrawn(TicketEvent):
    reason: str
    before_first_response: bool
    metrics_cancelled: tuple[str, ...]


class SlaBreached(TicketEvent):
    metric: str
    due_at: AwareDatetime
    # The breach time is the due time, however late it was noticed.
    breached_at: AwareDatetime
    # The command on which the breach was noticed: RecordSlaBreach (watchdog), RecordResponse (late reply), ...
    noticed_by: str
    target_minutes: int
    clock: ClockKind
    policy_version: str


class SlaAtRisk(TicketEvent):
    metric: str
    at_risk_at: AwareDatetime
    due_at: AwareDatetime


class PlanSubscribed(DomainEvent):
    customer_id: str
    plan: str
    effective_from: AwareDatetime


class MonthClosed(DomainEvent):
    """A month's statements were closed: from `closed_at` on, a change to them is an adjustment later."""

    month: str
    closed_at: AwareDatetime


TICKET_EVENTS: tuple[type[TicketEvent], ...] = (
    Opened, Escalated, SeverityChanged, Responded, CustomerReplied, AwaitingCustomer, Resumed,
    CallbackRequested, CallbackDone, Resolved, Reopened, Closed, Withdrawn, SlaBreached, SlaAtRisk,
)  # fmt: skip
