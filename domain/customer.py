"""Customers' support-plan subscriptions, effective-dated, as a small event-sourced aggregate."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from domain.events import PlanSubscribed
from domain.frozen import Frozen


class Subscription(Frozen):
    plan: str
    effective_from: datetime


class Customer(Frozen):
    """A customer's plans over time; the plan in force at an instant is the latest one started by then."""

    id: UUID
    version: int
    customer_id: str
    subscriptions: tuple[Subscription, ...] = ()
    seen_commands: frozenset[UUID] = frozenset()
    command_digests: dict[UUID, str] = {}

    def plan_at(self, at: datetime) -> str | None:
        started = [s for s in self.subscriptions if s.effective_from <= at]
        return started[-1].plan if started else None


def evolve(customer: Customer | None, event: PlanSubscribed) -> Customer:
    if customer is None:
        customer = Customer(id=event.originator_id, version=0, customer_id=event.customer_id)
    subscription = Subscription(plan=event.plan, effective_from=event.effective_from)
    ordered = tuple(sorted((*customer.subscriptions, subscription), key=lambda s: s.effective_from))
    return customer.model_copy(
        update={
            "version": event.originator_version,
            "subscriptions": ordered,
            "seen_commands": customer.seen_commands | {event.command_id},
            "command_digests": {**customer.command_digests, event.command_id: event.command_digest}
            if event.command_digest
            else customer.command_digests,
        }
    )
