"""Customers' support-plan subscriptions, effective-dated, as a small event-sourced aggregate."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from domain.commands import SubscribePlan, customer_stream_id, event_id
from domain.events import PlanSubscribed
from domain.policy import PolicyBook


class Subscription(BaseModel):
    model_config = ConfigDict(frozen=True)

    plan: str
    effective_from: datetime


class Customer(BaseModel):
    """A customer's plans over time; the plan in force at an instant is the latest one started by then."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    version: int
    customer_id: str
    subscriptions: tuple[Subscription, ...] = ()
    seen_commands: frozenset[UUID] = frozenset()
    command_digests: dict[UUID, str] = {}

    def plan_at(self, at: datetime) -> str | None:
        started = [s for s in self.subscriptions if s.effective_from <= at]
        return started[-1].plan if started else None


def project(customer: Customer | None, events: Iterable[PlanSubscribed]) -> Customer | None:
    for event in events:
        customer = evolve(customer, event)
    return customer


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


def subscribe(customer: Customer | None, command: SubscribePlan, book: PolicyBook) -> list[PlanSubscribed]:
    """Decide a subscription: the plan must exist in the policy in force when it starts."""
    if customer is not None and command.is_repeat(customer.seen_commands, customer.command_digests):
        return []
    book.in_force(command.occurred_at).check_source(command.type, command.source)
    book.in_force(command.effective_from).plan(command.plan)
    stream = customer_stream_id(command.customer_id)
    return [
        PlanSubscribed(
            originator_id=stream,
            originator_version=(customer.version if customer else 0) + 1,
            event_id=event_id(command.command_id, stream, 0),
            command_id=command.command_id,
            command_digest=command.digest,
            actor=command.actor,
            occurred_at=command.occurred_at,
            customer_id=command.customer_id,
            plan=command.plan,
            effective_from=command.effective_from,
        )
    ]
