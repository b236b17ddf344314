"""The command contract: the JSON other services publish on `tickets.commands`, as pydantic models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID, uuid5

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from domain.policy import Channel, Severity

# Ticket ids are derived from the publishing system's reference, so a repeated Open is recognised.
TICKET_NAMESPACE = UUID("6f1c2b8e-7d4a-5e3b-9c1f-2a8d4e6b0c17")
CUSTOMER_NAMESPACE = UUID("0b6e4f3a-1c2d-5e8f-a7b9-3d4c5e6f7a81")
SCHEMA_VERSION = 1

Text = Annotated[str, Field(min_length=1, max_length=2000)]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@-]+$")]


def ticket_id_for(source: str, reference: str) -> UUID:
    """The ticket id of a publishing system's reference: uuid5 over "source:reference"."""
    return uuid5(TICKET_NAMESPACE, f"{source}:{reference}")


def customer_stream_id(customer_id: str) -> UUID:
    """The id of a customer's subscription stream in the event store."""
    return uuid5(CUSTOMER_NAMESPACE, customer_id)


class Command(BaseModel):
    """What every command carries: its id (repeats change nothing), when it happened, and who did it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command_id: UUID
    occurred_at: AwareDatetime
    actor: Name

    @field_validator("occurred_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        """Instants are stored in UTC; the publisher's offset only said where it was."""
        return value.astimezone(UTC)

    @property
    def key(self) -> str:
        """The Kafka key: the ticket id (or the customer id for customer commands)."""
        return str(self.ticket_id)  # type: ignore[attr-defined]


class TicketCommand(Command):
    ticket_id: UUID


class OpenTicket(Command):
    type: Literal["OpenTicket"] = "OpenTicket"
    source: Name
    reference: Annotated[str, Field(min_length=1, max_length=200)]
    ticket_id: UUID | None = None
    customer_id: Name
    department: Name
    channel: Channel = "ticket"
    severity: Severity
    language: Annotated[str, Field(min_length=2, max_length=8)]
    subject: Text

    @model_validator(mode="after")
    def _derived_id(self) -> OpenTicket:
        derived = ticket_id_for(self.source, self.reference)
        if self.ticket_id is None:
            object.__setattr__(self, "ticket_id", derived)
        elif self.ticket_id != derived:
            raise ValueError(f"ticket_id must be uuid5(TICKET_NAMESPACE, 'source:reference') = {derived}")
        return self


class EscalateTicket(TicketCommand):
    """Raise the severity (C to B to A), hand the ticket to the escalation phone, or both."""

    type: Literal["EscalateTicket"] = "EscalateTicket"
    to_severity: Severity | None = None
    escalation_phone: bool = False

    @model_validator(mode="after")
    def _something(self) -> EscalateTicket:
        if self.to_severity is None and not self.escalation_phone:
            raise ValueError("an escalation needs to_severity, escalation_phone, or both")
        return self


class ChangeSeverity(TicketCommand):
    """Lower the severity: a new decision that needs a reason."""

    type: Literal["ChangeSeverity"] = "ChangeSeverity"
    to_severity: Severity
    reason: Text


class RecordResponse(TicketCommand):
    """An agent's public reply."""

    type: Literal["RecordResponse"] = "RecordResponse"


class RecordCustomerReply(TicketCommand):
    type: Literal["RecordCustomerReply"] = "RecordCustomerReply"


class AwaitCustomer(TicketCommand):
    """Pause the SLA clocks while the ticket waits on the customer."""

    type: Literal["AwaitCustomer"] = "AwaitCustomer"
    reason: Text


class ResumeTicket(TicketCommand):
    type: Literal["ResumeTicket"] = "ResumeTicket"
    reason: Text = "customer available again"


class RequestCallback(TicketCommand):
    type: Literal["RequestCallback"] = "RequestCallback"
    note: Annotated[str, Field(max_length=2000)] = ""


class CompleteCallback(TicketCommand):
    type: Literal["CompleteCallback"] = "CompleteCallback"


class ResolveTicket(TicketCommand):
    type: Literal["ResolveTicket"] = "ResolveTicket"
    resolution: Text


class ReopenTicket(TicketCommand):
    type: Literal["ReopenTicket"] = "ReopenTicket"
    reason: Text


class CloseTicket(TicketCommand):
    type: Literal["CloseTicket"] = "CloseTicket"


class WithdrawTicket(TicketCommand):
    type: Literal["WithdrawTicket"] = "WithdrawTicket"
    reason: Text


class RecordSlaBreach(TicketCommand):
    """Sent by the watchdog when a metric's due time has passed without a reply."""

    type: Literal["RecordSlaBreach"] = "RecordSlaBreach"
    metric: Name


class FlagSlaAtRisk(TicketCommand):
    """Sent by the watchdog when a running metric passed the policy's at-risk share of its target."""

    type: Literal["FlagSlaAtRisk"] = "FlagSlaAtRisk"
    metric: Name


class SubscribePlan(Command):
    """Put a customer on a support plan from an instant on (a plan change, or the first subscription)."""

    type: Literal["SubscribePlan"] = "SubscribePlan"
    customer_id: Name
    plan: Name
    effective_from: AwareDatetime

    @field_validator("effective_from")
    @classmethod
    def _from_in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @property
    def key(self) -> str:
        return self.customer_id


AnyCommand = Annotated[
    OpenTicket | EscalateTicket | ChangeSeverity | RecordResponse | RecordCustomerReply | AwaitCustomer
    | ResumeTicket | RequestCallback | CompleteCallback | ResolveTicket | ReopenTicket | CloseTicket
    | WithdrawTicket | RecordSlaBreach | FlagSlaAtRisk | SubscribePlan,
    Field(discriminator="type"),
]  # fmt: skip
COMMAND_ADAPTER: TypeAdapter[AnyCommand] = TypeAdapter(AnyCommand)
COMMAND_TYPES = tuple(arg for arg in AnyCommand.__origin__.__args__)  # type: ignore[attr-defined]


def parse_command(data: bytes | str | dict) -> AnyCommand:
    """Validate one command from JSON text or a decoded dict; raises pydantic.ValidationError."""
    if isinstance(data, dict):
        return COMMAND_ADAPTER.validate_python(data)
    return COMMAND_ADAPTER.validate_json(data)


def explain(error: ValidationError) -> str:
    """A validation error on one line: `field.path: message; ...`, fit for a log, a header or a terminal."""
    return "; ".join(
        f"{'.'.join(str(part) for part in e['loc']) or 'json'}: {e['msg']}" for e in error.errors(include_url=False)
    )
