"""A customer-month's statement and the usage it is built from: incidents, callbacks, lines, counts and totals."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from uuid import UUID

from pydantic import AwareDatetime, Field, model_validator

from domain.frozen import Frozen
from domain.money import ZERO, Cents, Month
from domain.policy import Band, Severity


class Incident(Frozen):
    """A ticket as billing sees it: who, when, which department, how severe at worst, and in which band."""

    ticket_id: UUID
    customer_id: str
    opened_at: AwareDatetime
    department: str
    highest_severity: Severity
    band: Band
    policy_version: str
    withdrawn_before_response: bool = False
    source_event_ids: tuple[UUID, ...] = Field(min_length=1)
    # The publishing system's reference of the ticket ("source:reference"), for people reading a statement.
    reference: str | None = None


class CallbackUse(Frozen):
    """A telephone callback carried out (CallbackDone)."""

    ticket_id: UUID
    customer_id: str
    done_at: AwareDatetime
    event_id: UUID
    reference: str | None = None


class IncidentLine(Frozen):
    """One incident on a statement: included in the allowance (0.00) or billed at its price."""

    ticket_id: UUID
    opened_at: AwareDatetime
    department: str
    severity: Severity
    band: Band
    policy_version: str
    included: bool
    price: Cents
    source_event_ids: tuple[UUID, ...]
    reference: str | None = None


class IncidentCount(Frozen):
    """How many incidents of one severity were opened in one band."""

    severity: Severity
    band: Band
    count: int


class CallbackLine(Frozen):
    """One callback used; `over` when beyond the plan's allowance, priced only if the policy says so."""

    ticket_id: UUID
    done_at: AwareDatetime
    event_id: UUID
    over: bool
    price: Cents
    reference: str | None = None


class AdjustmentLine(Frozen):
    """A change to a closed month's statement, carried on a later statement."""

    ticket_id: UUID
    month: Month
    amount: Cents
    reason: str
    reference: str | None = None
    # The events that changed the closed month's figure (a late escalation, a withdrawal, ...).
    source_event_ids: tuple[UUID, ...] = ()


class Statement(Frozen):
    """One customer's bill for one Berlin calendar month."""

    customer_id: str
    month: Month
    plan: str
    policy_version: str
    currency: str
    plan_fee: Cents
    incident_counts: tuple[IncidentCount, ...]
    included_allowance: int
    included_used: int
    incident_lines: tuple[IncidentLine, ...]
    callbacks_used: int
    callbacks_included: int
    callbacks_over: int
    callback_charge: Cents
    callback_lines: tuple[CallbackLine, ...]
    adjustments: tuple[AdjustmentLine, ...]
    net: Cents
    vat_rate: Decimal
    vat: Cents
    gross: Cents
    as_of: AwareDatetime
    closed: bool

    @model_validator(mode="after")
    def _totals_add_up(self) -> Statement:
        parts = self.plan_fee + total(self.incident_lines) + total(self.callback_lines)
        if self.net != parts + total(self.adjustments) or self.gross != self.net + self.vat:
            raise ValueError(f"statement {self.customer_id} {self.month}: totals do not add up")
        return self

    def incident_line(self, ticket_id: UUID) -> IncidentLine | None:
        return next((line for line in self.incident_lines if line.ticket_id == ticket_id), None)

    def callback_charge_for(self, ticket_id: UUID) -> Decimal:
        return total(line for line in self.callback_lines if line.ticket_id == ticket_id)

    def reference_of(self, ticket_id: UUID) -> str | None:
        lines = (*self.incident_lines, *self.callback_lines)
        return next((line.reference for line in lines if line.ticket_id == ticket_id), None)

    def ticket_ids(self) -> set[UUID]:
        return {line.ticket_id for line in (*self.incident_lines, *self.callback_lines)}


def total(lines: Iterable[IncidentLine | CallbackLine | AdjustmentLine]) -> Decimal:
    """What the lines add up to: each incident or callback line's price, each adjustment's amount."""
    return sum((line.amount if isinstance(line, AdjustmentLine) else line.price for line in lines), ZERO)
