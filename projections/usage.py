"""Billing usage folded from ticket and customer events: incidents, callbacks and plans, ready for statements."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import singledispatchmethod
from uuid import UUID

from domain import events as ev
from domain.billing import CallbackUse, Incident, Month, Statement, build_statement
from domain.customer import Subscription
from domain.policy import PolicyBook


@dataclass
class UsageLedger:
    """In-memory fold of events into what billing needs; the projector keeps the same facts in tables."""

    incidents: dict[UUID, Incident] = field(default_factory=dict)
    callbacks: list[CallbackUse] = field(default_factory=list)
    subscriptions: dict[str, list[Subscription]] = field(default_factory=dict)

    @singledispatchmethod
    def apply(self, event: ev.DomainEvent) -> None:
        """Events that change no bill are ignored."""

    @apply.register
    def _(self, event: ev.Opened) -> None:
        self.incidents[event.ticket_id] = Incident(
            ticket_id=event.ticket_id,
            customer_id=event.customer_id,
            opened_at=event.occurred_at,
            department=event.department,
            highest_severity=event.severity,
            band=event.band,
            policy_version=event.policy_version,
            source_event_ids=(event.event_id,),
        )

    @apply.register
    def _(self, event: ev.Escalated) -> None:
        incident = self.incidents[event.ticket_id]
        if event.to_severity.rank > incident.highest_severity.rank:
            self._update(incident, event, highest_severity=event.to_severity)

    @apply.register
    def _(self, event: ev.Withdrawn) -> None:
        if event.before_first_response:
            self._update(self.incidents[event.ticket_id], event, withdrawn_before_response=True)

    @apply.register
    def _(self, event: ev.CallbackDone) -> None:
        self.callbacks.append(
            CallbackUse(
                ticket_id=event.ticket_id,
                customer_id=event.customer_id,
                done_at=event.occurred_at,
                event_id=event.event_id,
            )
        )

    @apply.register
    def _(self, event: ev.PlanSubscribed) -> None:
        subscriptions = self.subscriptions.setdefault(event.customer_id, [])
        subscriptions.append(Subscription(plan=event.plan, effective_from=event.effective_from))
        subscriptions.sort(key=lambda s: s.effective_from)

    def _update(self, incident: Incident, event: ev.TicketEvent, **changes) -> None:
        changes["source_event_ids"] = (*incident.source_event_ids, event.event_id)
        self.incidents[incident.ticket_id] = incident.model_copy(update=changes)

    def billed_plan(self, customer_id: str, month: Month, book: PolicyBook) -> str | None:
        """The plan in force at the month's first instant, or the one a customer starting mid-month starts with."""
        subscriptions = self.subscriptions.get(customer_id, [])
        first_instant = month.first_instant(book.latest.calendar.zone)
        in_force = [s for s in subscriptions if s.effective_from <= first_instant]
        if in_force:
            return in_force[-1].plan
        starting = [s for s in subscriptions if Month.of(s.effective_from, book.latest.calendar.zone) == month]
        return starting[0].plan if starting else None

    def months_with_usage(self, book: PolicyBook) -> set[tuple[str, Month]]:
        zone = book.latest.calendar.zone
        used = {(i.customer_id, Month.of(i.opened_at, zone)) for i in self.incidents.values()}
        return used | {(c.customer_id, Month.of(c.done_at, zone)) for c in self.callbacks}

    def statement(self, book: PolicyBook, customer_id: str, month: Month, as_of: datetime) -> Statement | None:
        """The customer's statement for the month, or None when no plan is billed for it."""
        plan = self.billed_plan(customer_id, month, book)
        if plan is None:
            return None
        zone = book.latest.calendar.zone
        incidents = [
            i for i in self.incidents.values() if i.customer_id == customer_id and Month.of(i.opened_at, zone) == month
        ]
        callbacks = [c for c in self.callbacks if c.customer_id == customer_id and Month.of(c.done_at, zone) == month]
        return build_statement(book, customer_id, month, plan, incidents, callbacks, as_of=as_of)
