"""TicketDesk, the eventsourcing application: load, one domain decision, one save; batches for the intake."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, PersistenceError

from domain import customer as customers
from domain import ticket as tickets
from domain.commands import Command, OpenTicket, SubscribePlan, customer_stream_id
from domain.decisions import decide, decide_open
from domain.errors import DomainError
from domain.events import DomainEvent
from domain.persistence import PERSISTENCE_ENV
from domain.policy import PolicyBook

# A concurrent writer saved the same stream first: decide again on the fresh state, after a short random
# back-off so that writers racing for one ticket stop colliding; give up only under pathological contention.
MAX_CONFLICT_RETRIES = 12
BACKOFF_SECONDS = 0.002


class WriteContention(PersistenceError):
    """Other writers kept winning the race for the same streams; the caller should try the batch later."""


@dataclass(frozen=True)
class Outcome:
    """What became of one command: applied (with its events), unchanged (a repeat), or refused (and why)."""

    command: Command
    status: str
    events: tuple[DomainEvent, ...] = ()
    reason: str = ""

    @property
    def refused(self) -> bool:
        return self.status == "refused"


@dataclass
class _Workspace:
    """States loaded or changed during one batch, so later commands see earlier ones' events."""

    tickets: dict[UUID, tickets.Ticket | None] = field(default_factory=dict)
    customers: dict[UUID, customers.Customer | None] = field(default_factory=dict)
    pending: list[DomainEvent] = field(default_factory=list)


def _subscriptions_first(commands: Sequence[Command]) -> list[int]:
    """Indexes with SubscribePlan commands first, otherwise in order.

    Subscriptions travel on other partitions (keyed by customer) than the tickets they enable, so a batch may
    hold an OpenTicket before the subscription it needs. Deciding subscriptions first is always safe: which
    plan a ticket gets depends on the subscriptions' effective instants, never on the order they arrive in.
    """
    return sorted(range(len(commands)), key=lambda i: not isinstance(commands[i], SubscribePlan))


class TicketDesk(Application[UUID]):
    """The ticket lifecycle engine's write side."""

    name = "TicketDesk"
    env: ClassVar[dict[str, str]] = dict(PERSISTENCE_ENV)

    def __init__(self, policies: PolicyBook, env: dict[str, str] | None = None):
        super().__init__(env)
        self.policies = policies

    def handle(self, command: Command) -> Outcome:
        """Apply one command in its own transaction, retrying on a concurrent write."""
        return self.handle_batch([command])[0]

    def handle_batch(self, commands: Sequence[Command]) -> list[Outcome]:
        """Apply commands in order and save all their events in ONE transaction.

        1. Decide each command against the states loaded so far (refusals don't stop the batch); plan
           subscriptions go first, see `_subscriptions_first`.
        2. Save every new event at once.
        3. On a conflict with a concurrent writer, redo the whole batch on fresh states.
        """
        for attempt in range(MAX_CONFLICT_RETRIES):
            workspace = _Workspace()
            outcomes: list[Outcome | None] = [None] * len(commands)
            for index in _subscriptions_first(commands):
                outcomes[index] = self._decide(commands[index], workspace)
            try:
                if workspace.pending:
                    self.save(*workspace.pending)
                return outcomes
            except IntegrityError:
                time.sleep(random.uniform(0, BACKOFF_SECONDS * 2 ** min(attempt, 6)))
        raise WriteContention(f"gave up after {MAX_CONFLICT_RETRIES} write conflicts")

    def _decide(self, command: Command, workspace: _Workspace) -> Outcome:
        try:
            events = self._events_for(command, workspace)
        except DomainError as refusal:
            return Outcome(command, "refused", reason=str(refusal))
        workspace.pending.extend(events)
        return Outcome(command, "applied" if events else "unchanged", tuple(events))

    def _events_for(self, command: Command, workspace: _Workspace) -> list[DomainEvent]:
        if isinstance(command, SubscribePlan):
            stream = customer_stream_id(command.customer_id)
            customer = self._customer_in(workspace, stream)
            events = customers.subscribe(customer, command, self.policies)
            workspace.customers[stream] = customers.project(customer, events)
            return events
        ticket = self._ticket_in(workspace, command.ticket_id)
        if isinstance(command, OpenTicket):
            plan = self._plan_at(workspace, command)
            events = decide_open(ticket, command, plan, self.policies)
        else:
            events = decide(ticket, command, self.policies)
        workspace.tickets[command.ticket_id] = tickets.project(ticket, events)
        return events

    def _plan_at(self, workspace: _Workspace, command: OpenTicket) -> str | None:
        customer = self._customer_in(workspace, customer_stream_id(command.customer_id))
        return customer.plan_at(command.occurred_at) if customer else None

    def _ticket_in(self, workspace: _Workspace, ticket_id: UUID) -> tickets.Ticket | None:
        if ticket_id not in workspace.tickets:
            workspace.tickets[ticket_id] = self.ticket(ticket_id)
        return workspace.tickets[ticket_id]

    def _customer_in(self, workspace: _Workspace, stream: UUID) -> customers.Customer | None:
        if stream not in workspace.customers:
            workspace.customers[stream] = self._load(stream, customers.project)
        return workspace.customers[stream]

    def ticket(self, ticket_id: UUID) -> tickets.Ticket | None:
        """The ticket's current state, or None if it was never opened."""
        return self._load(ticket_id, tickets.project)

    def customer(self, customer_id: str) -> customers.Customer | None:
        return self._load(customer_stream_id(customer_id), customers.project)

    def _load(self, stream: UUID, projector: Callable[[Any, Iterable[Any]], Any]) -> Any:
        try:
            return self.repository.get(stream, projector_func=projector)
        except AggregateNotFoundError:
            return None

    def events_of(self, stream: UUID) -> Iterable[DomainEvent]:
        return self.events.get(stream)
