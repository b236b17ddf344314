"""The command contract: the JSON other services publish on `tickets.commands`, as pydantic models."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID, SafeUUID, uuid5

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    TypeAdapter,
    ValidationInfo,
    model_validator,
)

from domain.errors import ConflictingRepeat
from domain.frozen import Frozen
from domain.policy import Channel, Severity

# Ticket ids are derived from the publishing system's reference, so a repeated Open is recognised.
TICKET_NAMESPACE = UUID("6f1c2b8e-7d4a-5e3b-9c1f-2a8d4e6b0c17")
CUSTOMER_NAMESPACE = UUID("0b6e4f3a-1c2d-5e8f-a7b9-3d4c5e6f7a81")
MONTH_NAMESPACE = UUID("5d2a9e47-3b1c-5f86-9a0d-7e4c1b8f2a63")
SCHEMA_VERSION = 1

# RFC 3339 with an offset: what the contract promises. pydantic alone would also take Unix numbers and numeric
# strings, whose meaning (seconds? milliseconds? which zone?) the publisher never stated.
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class InstantRange:
    """Instants a command may name; far outside it is a mistake, and near year 1 or 9999 UTC conversion overflows."""

    earliest: datetime
    latest: datetime

    def __str__(self) -> str:
        return f"{self.earliest.isoformat()} and {self.latest.isoformat()}"


DEFAULT_INSTANTS = InstantRange(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def _rfc3339_text(value: Any) -> Any:
    """Strings must be RFC 3339 with an offset; datetimes built in Python pass through."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time string with an offset, like 2026-03-02T10:00:00+01:00")
    return value


def _in_range_utc(value: datetime, info: ValidationInfo) -> datetime:
    """Within the accepted range (the intake's setting, or the default), and stored in UTC."""
    accepted = (info.context or {}).get("instants", DEFAULT_INSTANTS)
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not accepted.earliest <= in_utc <= accepted.latest:
        raise ValueError(f"must lie between {accepted}")
    return in_utc


# Instants are stored in UTC; the publisher's offset only said where it was.
Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_in_range_utc)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@-]+$")]
# A month of the policy's calendar, like "2026-03"; the first digit keeps out year 0, which has no months.
MonthText = Annotated[str, Field(pattern=r"^[12][0-9]{3}-(0[1-9]|1[0-2])$")]


def ticket_id_for(source: str, reference: str) -> UUID:
    """The ticket id of a publishing system's reference: uuid5 over "source:reference"."""
    return uuid5(TICKET_NAMESPACE, f"{source}:{reference}")


def event_id(command_id: UUID, stream: UUID, index: int) -> UUID:
    """The id of the `index`th event a command decided on a stream: unique across the store even when a publisher
    reuses a command id on another ticket, and the same when the command is decided again after a crash."""
    return fast_uuid5(command_id, f"{stream}:{index}")


def fast_uuid5(namespace: UUID, name: str) -> UUID:
    """uuid.uuid5, bit for bit, built without UUID's argument checks: an id for every event decided."""
    digest = hashlib.sha1(namespace.bytes + name.encode(), usedforsecurity=False).digest()
    value = (int.from_bytes(digest[:16]) & _UUID5_KEEP) | _UUID5_SET
    made = object.__new__(UUID)
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", SafeUUID.unknown)
    return made


# RFC 4122: variant bits 10 and version 5, as uuid.UUID(bytes=..., version=5) sets them.
_UUID5_KEEP = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
_UUID5_SET = (0x8000 << 48) | (5 << 76)


@lru_cache(maxsize=65_536)
def customer_stream_id(customer_id: str) -> UUID:
    """The id of a customer's subscription stream in the event store."""
    return uuid5(CUSTOMER_NAMESPACE, customer_id)


def month_stream_id(month: str) -> UUID:
    """The id of a month's closing stream in the event store, from its text like "2026-03"."""
    return uuid5(MONTH_NAMESPACE, month)


class Command(Frozen):
    """What every command carries: its id (repeats change nothing), when it happened, and who did it."""

    command_id: UUID
    occurred_at: Instant
    actor: Name
    # The publishing system; the policy may allow some command types only from some sources.
    source: Name | None = None

    # A repeat of a command id with another body is refused, except where the id names the fact itself (the
    # watchdog's "metric M of ticket T breached"): two watchdogs may then send it at different instants.
    conflicts_on_repeat: ClassVar[bool] = True

    @property
    def digest(self) -> str | None:
        """A fingerprint of the whole command, to tell a repeat from a reused id; None where repeats never conflict."""
        if not self.conflicts_on_repeat:
            return None
        return hashlib.blake2b(self.__pydantic_serializer__.to_json(self), digest_size=12).hexdigest()

    def is_repeat(self, seen: frozenset[UUID], digests: Mapping[UUID, str]) -> bool:
        """Whether this command was applied before; the same id with a different body is refused."""
        if self.command_id not in seen:
            return False
        recorded = digests.get(self.command_id)
        if recorded is not None and recorded != self.digest:
            raise ConflictingRepeat(
                f"command {self.command_id} was applied before with a different body: a command id names one command"
            )
        return True

    @property
    def key(self) -> str:
        """The Kafka key: the ticket id (or the customer id for customer commands, the month for months)."""
        return str(self.ticket_id)  # type: ignore[attr-defined]

    @property
    def stream_id(self) -> UUID:
        """The event stream the command is decided on: its ticket's, unless a subclass says otherwise."""
        return self.ticket_id  # type: ignore[attr-defined]


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
    conflicts_on_repeat: ClassVar[bool] = False


class FlagSlaAtRisk(TicketCommand):
    """Sent by the watchdog when a running metric passed the policy's at-risk share of its target."""

    type: Literal["FlagSlaAtRisk"] = "FlagSlaAtRisk"
    metric: Name
    conflicts_on_repeat: ClassVar[bool] = False


class SubscribePlan(Command):
    """Put a customer on a support plan from an instant on (a plan change, or the first subscription)."""

    type: Literal["SubscribePlan"] = "SubscribePlan"
    customer_id: Name
    plan: Name
    effective_from: Instant

    @property
    def key(self) -> str:
        return self.customer_id

    @property
    def stream_id(self) -> UUID:
        return customer_stream_id(self.customer_id)


class CloseMonth(Command):
    """Close a month's statements: later changes to them become adjustments on a later statement."""

    type: Literal["CloseMonth"] = "CloseMonth"
    month: MonthText

    @property
    def key(self) -> str:
        return self.month

    @property
    def stream_id(self) -> UUID:
        return month_stream_id(self.month)


AnyCommand = Annotated[
    OpenTicket | EscalateTicket | ChangeSeverity | RecordResponse | RecordCustomerReply | AwaitCustomer
    | ResumeTicket | RequestCallback | CompleteCallback | ResolveTicket | ReopenTicket | CloseTicket
    | WithdrawTicket | RecordSlaBreach | FlagSlaAtRisk | SubscribePlan | CloseMonth,
    Field(discriminator="type"),
]  # fmt: skip
COMMAND_ADAPTER: TypeAdapter[AnyCommand] = TypeAdapter(AnyCommand)
COMMAND_TYPES = tuple(arg for arg in AnyCommand.__origin__.__args__)  # type: ignore[attr-defined]


def parse_command(data: bytes | str | dict, instants: InstantRange = DEFAULT_INSTANTS) -> AnyCommand:
    """Validate one command from JSON text or a decoded dict; raises pydantic.ValidationError."""
    context = {"instants": instants}
    if isinstance(data, dict):
        return COMMAND_ADAPTER.validate_python(data, context=context)
    return COMMAND_ADAPTER.validate_json(data, context=context)
