"""The SLA alert on-call receives: its JSON model (part of the contract), the ticket facts behind it, the transform."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import ClassVar
from uuid import UUID, uuid5

from pydantic import AwareDatetime, Field

from domain.durations import minutes
from domain.events import Escalated, Opened, SeverityChanged, SlaAtRisk, SlaBreached, TicketEvent
from domain.frozen import Frozen
from domain.policy import Severity

# Alert ids are uuid5(ALERT_NAMESPACE, event id): the relay's repeats and a rebuilt consumer give the same id.
ALERT_NAMESPACE = UUID("6f1d2c8a-9b3e-4f57-a0c4-2e8d7b915c36")
# Events that carry a fact an alert is enriched with, and the events that become alerts.
FACT_EVENTS: tuple[type[TicketEvent], ...] = (Opened, Escalated, SeverityChanged)
ALERT_EVENTS: tuple[type[TicketEvent], ...] = (SlaBreached, SlaAtRisk)


class AlertKind(StrEnum):
    BREACH = "breach"
    AT_RISK = "at_risk"


class SlaAlert(Frozen):
    """An SLA breach or risk of one ticket, with what on-call needs to act on it without a lookup."""

    schema_version: ClassVar[int] = 1

    alert_id: UUID = Field(description="uuid5 of the event id: the same alert always has the same id.")
    kind: AlertKind
    ticket_id: UUID
    reference: str | None = Field(description="The publishing system's reference; null if the opening is unknown.")
    customer_id: str
    plan: str | None = Field(description="The plan the ticket was opened under; null if the opening is unknown.")
    severity: Severity | None = Field(description="The ticket's severity when the alert was raised.")
    metric: str = Field(description="The SLA metric: `first_response` or `next_response:<n>`.")
    due_at: AwareDatetime
    breached_at: AwareDatetime | None = Field(description="Breach only: the breach time, which is the due time.")
    at_risk_at: AwareDatetime | None = Field(description="At-risk only: when the metric reached its at-risk share.")
    noticed_at: AwareDatetime = Field(description="When the engine recorded the breach or the risk.")
    minutes_late: int | None = Field(
        description="Breach only: whole real-time minutes from the due time to when the breach was noticed."
    )
    minutes_left: int | None = Field(
        description="At-risk only: whole real-time minutes from when the risk was noticed to the due time."
    )
    policy_version: str | None
    event_id: UUID = Field(description="The SlaBreached or SlaAtRisk event this alert was made from.")


@dataclass(frozen=True)
class TicketFacts:
    """What earlier events said about a ticket that its alerts repeat; `version` is the last event applied."""

    version: int = 0
    reference: str | None = None
    plan: str | None = None
    severity: Severity | None = None
    policy_version: str | None = None


def alert_id(event_id: UUID) -> UUID:
    return uuid5(ALERT_NAMESPACE, str(event_id))


def facts_after(facts: TicketFacts, event: TicketEvent) -> TicketFacts:
    """The facts once `event` happened: an opening sets them, a severity change updates the severity."""
    version = event.originator_version
    if isinstance(event, Opened):
        return TicketFacts(version, event.reference, event.plan, event.severity, event.policy_version)
    if isinstance(event, Escalated | SeverityChanged):
        return replace(facts, version=version, severity=event.to_severity)
    return replace(facts, version=version)


def alert_for(event: SlaBreached | SlaAtRisk, facts: TicketFacts) -> SlaAlert:
    """The alert for a breach or a risk, enriched with the ticket's facts before it."""
    breach = isinstance(event, SlaBreached)
    return SlaAlert(
        alert_id=alert_id(event.event_id),
        kind=AlertKind.BREACH if breach else AlertKind.AT_RISK,
        ticket_id=event.ticket_id,
        reference=facts.reference,
        customer_id=event.customer_id,
        plan=facts.plan,
        severity=facts.severity,
        metric=event.metric,
        due_at=event.due_at,
        breached_at=event.breached_at if breach else None,
        at_risk_at=None if breach else event.at_risk_at,
        noticed_at=event.occurred_at,
        minutes_late=_minutes(event.due_at, event.occurred_at) if breach else None,
        minutes_left=None if breach else _minutes(event.occurred_at, event.due_at),
        policy_version=event.policy_version if breach else facts.policy_version,
        event_id=event.event_id,
    )


def _minutes(start: datetime, end: datetime) -> int:
    """Whole minutes from start to end, never negative."""
    return max(0, minutes(end - start))
