"""TicketDesk, the eventsourcing application: load, one domain decision, one save; batches for the intake."""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, PersistenceError
from eventsourcing.utils import Environment

from domain import closing
from domain import customer as customers
from domain import ticket as tickets
from domain.commands import CloseMonth, Command, OpenTicket, SubscribePlan, customer_stream_id
from domain.decisions import decide_open_with_state, decide_with_state
from domain.errors import DomainError
from domain.events import DomainEvent
from domain.persistence import PydanticMapper, stored_as_json
from domain.policy import PolicyBook

# A concurrent writer saved the same stream first: decide again on the fresh state, after a short random
# back-off so that writers racing for one ticket stop colliding; give up only under pathological contention.
# (Four writers hammering one ticket, as a test does, lost 12 rounds in a row about once in 25 runs.)
MAX_CONFLICT_RETRIES = 30
BACKOFF_SECONDS = 0.002


Projector = Callable[[Any, Iterable[Any]], Any]


class WriteContention(PersistenceError):
    """Other writers kept winning the race for the same streams; the caller should try the batch later."""


class OutcomeStatus(StrEnum):
    """What became of a command."""

    APPLIED = "applied"
    UNCHANGED = "unchanged"  # a repeat, or a command that changes nothing
    REFUSED = "refused"


@dataclass(frozen=True)
class Outcome:
    """What became of one command: applied (with its events), unchanged (a repeat), or refused (and why)."""

    command: Command
    status: OutcomeStatus
    events: tuple[DomainEvent, ...] = ()
    reason: str = ""
    # For a refusal, which kind (see DomainError.kind): a missing fact may still arrive, the rest never will.
    kind: str = ""

    @property
    def refused(self) -> bool:
        return self.status is OutcomeStatus.REFUSED


@dataclass
class _Workspace:
    """States loaded or changed during one batch, by stream id, so later commands see earlier ones' events."""

    states: dict[UUID, Any] = field(default_factory=dict)
    pending: list[DomainEvent] = field(default_factory=list)
    # Streams whose state came from the recent states rather than from the store.
    remembered: set[UUID] = field(default_factory=set)

    def trusts(self, outcome: Outcome) -> bool:
        """A refusal or a no-op decided on a remembered state might be stale; anything else is checked on save."""
        return outcome.status is OutcomeStatus.APPLIED or outcome.command.stream_id not in self.remembered


class _RecentStates:
    """States this desk saved lately, so a busy intake does not read each ticket back from the store.

    Safe with other writers: a state that went stale here leads to events whose versions already exist, the
    store refuses them with IntegrityError, and the batch is decided again on states read from the store. A
    command refused or found repeated on a remembered state saves nothing the store could refuse, so such a
    batch is decided again on states read from the store too (refusals are rare; this costs little).
    """

    def __init__(self, size: int):
        self.size = size
        self._states: OrderedDict[UUID, Any] = OrderedDict()

    def get(self, stream: UUID) -> Any | None:
        state = self._states.get(stream)
        if state is not None:
            self._states.move_to_end(stream)
        return state

    def keep(self, states: dict[UUID, Any]) -> None:
        """Remember tickets only: their commands share one partition, hence one intake. A customer's plans
        arrive on the customer's partition, maybe at another intake, and an Open must see them at once."""
        for stream, state in states.items():
            if isinstance(state, tickets.Ticket):
                self._states[stream] = state
                self._states.move_to_end(stream)
        while len(self._states) > self.size:
            self._states.popitem(last=False)

    def forget(self) -> None:
        self._states.clear()


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

    def __init__(self, policies: PolicyBook, env: dict[str, str] | None = None, recent_states: int = 50_000):
        super().__init__(env)
        self.policies = policies
        self._recent = _RecentStates(recent_states)

    def construct_env(self, name: str, env: dict[str, str] | None = None) -> Environment:
        """Only what the caller passes: the library would read the process environment too, where a variable
        could swap the event mapper, compress or encipher the stored events, or move the store."""
        return Environment(name, dict(env or {}))

    def construct_mapper(self) -> PydanticMapper:
        return stored_as_json()

    def handle(self, command: Command) -> Outcome:
        """Apply one command in its own transaction, retrying on a concurrent write."""
        return self.handle_batch([command])[0]

    def handle_batch(self, commands: Sequence[Command]) -> list[Outcome]:
        """Apply commands in order and save all their events in ONE transaction.

        1. Decide each command against the states loaded so far (refusals don't stop the batch); plan
           subscriptions go first, see `_subscriptions_first`.
        2. Save every new event at once.
        3. Keep the new states for the next batch.
        4. On a conflict with a concurrent writer, forget the kept states and redo the batch on fresh ones.
        """
        for attempt in range(MAX_CONFLICT_RETRIES):
            workspace = _Workspace()
            outcomes: list[Outcome | None] = [None] * len(commands)
            for index in _subscriptions_first(commands):
                outcomes[index] = self._decide(commands[index], workspace)
            if not all(map(workspace.trusts, outcomes)):
                self._recent.forget()
                continue
            try:
                if workspace.pending:
                    self.save(*workspace.pending)
            except IntegrityError:
                self._recent.forget()
                time.sleep(random.uniform(0, BACKOFF_SECONDS * 2 ** min(attempt, 6)))
                continue
            self._recent.keep(workspace.states)
            return outcomes
        raise WriteContention(f"gave up after {MAX_CONFLICT_RETRIES} write conflicts")

    def _decide(self, command: Command, workspace: _Workspace) -> Outcome:
        try:
            events = self._events_for(command, workspace)
        except DomainError as refusal:
            return Outcome(command, OutcomeStatus.REFUSED, reason=str(refusal), kind=refusal.kind)
        workspace.pending.extend(events)
        return Outcome(command, OutcomeStatus.APPLIED if events else OutcomeStatus.UNCHANGED, tuple(events))

    def _events_for(self, command: Command, workspace: _Workspace) -> list[DomainEvent]:
        if isinstance(command, SubscribePlan):
            stream = customer_stream_id(command.customer_id)
            customer = self._state_in(workspace, stream, customers.project)
            events = customers.subscribe(customer, command, self.policies)
            workspace.states[stream] = customers.project(customer, events)
            return events
        if isinstance(command, CloseMonth):
            closed = self._state_in(workspace, command.stream_id, closing.project)
            events = closing.close_month(closed, command, self.policies)
            workspace.states[command.stream_id] = closing.project(closed, events)
            return events
        ticket = self._state_in(workspace, command.ticket_id, tickets.project)
        if isinstance(command, OpenTicket):
            plan = self._plan_at(workspace, command)
            events, workspace.states[command.ticket_id] = decide_open_with_state(ticket, command, plan, self.policies)
        else:
            events, workspace.states[command.ticket_id] = decide_with_state(ticket, command, self.policies)
        return events

    def _plan_at(self, workspace: _Workspace, command: OpenTicket) -> str | None:
        customer = self._state_in(workspace, customer_stream_id(command.customer_id), customers.project)
        return customer.plan_at(command.occurred_at) if customer else None

    def _state_in(self, workspace: _Workspace, stream: UUID, projector: Projector) -> Any | None:
        """The stream's state in this batch: changed here already, kept from a recent batch, or read."""
        if stream not in workspace.states:
            remembered = self._recent.get(stream)
            if remembered is not None:
                workspace.remembered.add(stream)
            workspace.states[stream] = remembered or self._load(stream, projector)
        return workspace.states[stream]

    def ticket(self, ticket_id: UUID) -> tickets.Ticket | None:
        """The ticket's current state, or None if it was never opened."""
        return self._load(ticket_id, tickets.project)

    def customer(self, customer_id: str) -> customers.Customer | None:
        return self._load(customer_stream_id(customer_id), customers.project)

    def _load(self, stream: UUID, projector: Projector) -> Any:
        try:
            return self.repository.get(stream, projector_func=projector)
        except AggregateNotFoundError:
            return None

    def events_of(self, stream: UUID) -> Iterable[DomainEvent]:
        return self.events.get(stream)

    def recorded_events(self, page: int = 1000) -> Iterator[DomainEvent]:
        """Every stored event in the order it was recorded, read from the notification log a page at a time."""
        start = 1
        while notifications := self.recorder.select_notifications(start=start, limit=page):
            yield from (self.mapper.to_domain_event(n) for n in notifications)
            start = notifications[-1].id + 1
