"""Billing usage folded from ticket and customer events: incidents, callbacks and plans, ready for statements."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache, singledispatchmethod
from uuid import UUID

from domain import events as ev
from domain.billing import CallbackUse, Incident, Month
from domain.customer import Subscription
from domain.policy import PolicyBook

# Instants whose month is remembered: every statement build asks it again of each of the customer's incidents.
MONTHS_HELD = 1 << 16
# What an event changed: the customer and the instant that places the change in a month (opening, callback).
Touched = tuple[str, datetime]


@dataclass
class UsageLedger:
    """In-memory fold of events into what billing needs, before any month is priced or closed."""

    incidents: dict[UUID, Incident] = field(default_factory=dict)
    callbacks: list[CallbackUse] = field(default_factory=list)
    subscriptions: dict[str, list[Subscription]] = field(default_factory=dict)
    references: dict[UUID, str] = field(default_factory=dict)
    # The incidents again, by customer (same order): statements read one customer's, not every customer's.
    _of_customer: dict[str, dict[UUID, Incident]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for incident in self.incidents.values():
            self._of_customer.setdefault(incident.customer_id, {})[incident.ticket_id] = incident

    def keep(self, incident: Incident) -> None:
        """Record an incident, new or changed: the one way incidents are written."""
        self.incidents[incident.ticket_id] = incident
        self._of_customer.setdefault(incident.customer_id, {})[incident.ticket_id] = incident

    def apply(self, event: ev.DomainEvent) -> Touched | None:
        """Fold one event; say which customer's usage of which instant it changed. Others are ignored."""
        # The handler straight from the dispatcher's cache: `self._fold(event)` would build a bound wrapper (and
        # copy its metadata) for every event.
        return _HANDLERS(type(event))(self, event)

    @singledispatchmethod
    def _fold(self, event: ev.DomainEvent) -> Touched | None:
        return None

    @_fold.register
    def _(self, event: ev.Opened) -> Touched | None:
        self.references[event.ticket_id] = f"{event.source}:{event.reference}"
        self.keep(Incident(
            ticket_id=event.ticket_id,
            customer_id=event.customer_id,
            opened_at=event.occurred_at,
            department=event.department,
            highest_severity=event.severity,
            band=event.band,
            policy_version=event.policy_version,
            source_event_ids=(event.event_id,),
            reference=self.references[event.ticket_id],
        ))  # fmt: skip
        return event.customer_id, event.occurred_at

    @_fold.register
    def _(self, event: ev.Escalated) -> Touched | None:
        incident = self.incidents[event.ticket_id]
        if event.to_severity.rank <= incident.highest_severity.rank:
            return None
        return self._update(incident, event, highest_severity=event.to_severity)

    @_fold.register
    def _(self, event: ev.Withdrawn) -> Touched | None:
        if not event.before_first_response:
            return None
        return self._update(self.incidents[event.ticket_id], event, withdrawn_before_response=True)

    @_fold.register
    def _(self, event: ev.CallbackDone) -> Touched | None:
        self.callbacks.append(
            CallbackUse(
                ticket_id=event.ticket_id,
                customer_id=event.customer_id,
                done_at=event.occurred_at,
                event_id=event.event_id,
                reference=self.references.get(event.ticket_id),
            )
        )
        return event.customer_id, event.occurred_at

    @_fold.register
    def _(self, event: ev.PlanSubscribed) -> Touched | None:
        subscriptions = self.subscriptions.setdefault(event.customer_id, [])
        subscriptions.append(Subscription(plan=event.plan, effective_from=event.effective_from))
        subscriptions.sort(key=lambda s: s.effective_from)
        return None  # a plan changes the fee of months to come, never an incident or a callback

    def _update(self, incident: Incident, event: ev.TicketEvent, **changes) -> Touched:
        changes["source_event_ids"] = (*incident.source_event_ids, event.event_id)
        self.keep(incident.model_copy(update=changes))
        return incident.customer_id, incident.opened_at

    def billed_plan(self, customer_id: str, month: Month, book: PolicyBook) -> str | None:
        """The plan in force at the month's first instant, or the one a customer starting mid-month starts with."""
        subscriptions = self.subscriptions.get(customer_id, [])
        first_instant = month.first_instant(book.latest.calendar.zone)
        in_force = [s for s in subscriptions if s.effective_from <= first_instant]
        if in_force:
            return in_force[-1].plan
        starting = [s for s in subscriptions if Month.of(s.effective_from, book.latest.calendar.zone) == month]
        return starting[0].plan if starting else None

    def first_month(self, customer_id: str, book: PolicyBook) -> Month | None:
        """The customer's first billed month: when their first plan starts, or when the policy begins."""
        subscriptions = self.subscriptions.get(customer_id)
        if not subscriptions:
            return None
        zone = book.latest.calendar.zone
        return max(Month.of(subscriptions[0].effective_from, zone), Month.of(book.policies[0].starts_at, zone))

    def last_used_month(self, customer_id: str, book: PolicyBook) -> Month | None:
        """The latest month in which the customer opened an incident or had a callback carried out."""
        zone = book.latest.calendar.zone
        used = [_month_of(i.opened_at, zone) for i in self._of_customer.get(customer_id, {}).values()]
        used += [_month_of(c.done_at, zone) for c in self.callbacks if c.customer_id == customer_id]
        return max(used, default=None)

    def usage_of(self, customer_id: str, month: Month, book: PolicyBook) -> tuple[list[Incident], list[CallbackUse]]:
        """The customer's incidents opened and callbacks carried out in the month."""
        zone = book.latest.calendar.zone
        incidents = [
            i for i in self._of_customer.get(customer_id, {}).values() if _month_of(i.opened_at, zone) == month
        ]
        callbacks = [c for c in self.callbacks if c.customer_id == customer_id and _month_of(c.done_at, zone) == month]
        return incidents, callbacks


_month_of = lru_cache(maxsize=MONTHS_HELD)(Month.of)
_HANDLERS = UsageLedger.__dict__["_fold"].dispatcher.dispatch
