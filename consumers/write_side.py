"""The intake's write side: a poll batch decided on states kept between batches, saved in one transaction."""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from eventsourcing.persistence import IntegrityError, PersistenceError

from domain import rules
from domain.commands import Command, SubscribePlan
from domain.desk import Outcome, OutcomeStatus, TicketDesk, outcome_of
from domain.events import DomainEvent
from domain.ticket import Ticket

# A concurrent writer saved the same stream first: decide again on the fresh state, after a short random
# back-off so that writers racing for one ticket stop colliding; give up only under pathological contention.
# (Four writers hammering one ticket, as a test does, lost 12 rounds in a row about once in 25 runs.)
MAX_CONFLICT_RETRIES = 30
BACKOFF_SECONDS = 0.002
# Ticket states kept between batches: a busy intake then rarely reads a ticket back from the store.
RECENT_STATES = 50_000

# The port that reads many streams' states at once, in one store round trip (or a few): a stream with no events
# yet is simply absent from the answer. The composition root provides one for each store it knows.
StatesReader = Callable[[Collection[UUID]], dict[UUID, rules.State]]


class WriteContention(PersistenceError):
    """Other writers kept winning the race for the same streams; the caller should try the batch later."""


@dataclass
class _Workspace:
    """States loaded or changed during one batch, by stream id, so later commands see earlier ones' events."""

    states: dict[UUID, rules.State] = field(default_factory=dict)
    pending: list[DomainEvent] = field(default_factory=list)
    # Streams whose state came from the recent states rather than from the store.
    remembered: set[UUID] = field(default_factory=set)

    def trusts(self, outcome: Outcome) -> bool:
        """A refusal or a no-op decided on a remembered state might be stale; anything else is checked on save."""
        return outcome.status is OutcomeStatus.APPLIED or outcome.command.stream_id not in self.remembered

    def record(self, outcome: Outcome) -> None:
        """The outcome's events pending for the save, and folded onto their streams' states."""
        for event in outcome.events:
            self.states[event.originator_id] = rules.evolve(self.states[event.originator_id], event)
        self.pending.extend(outcome.events)


class _RecentStates:
    """States this write side saved lately, so a busy intake does not read each ticket back from the store.

    Safe with other writers: a state that went stale here leads to events whose versions already exist, the
    store refuses them with IntegrityError, and the batch is decided again on states read from the store. A
    command refused or found repeated on a remembered state saves nothing the store could refuse, so such a
    batch is decided again on states read from the store too (refusals are rare; this costs little).
    """

    def __init__(self, size: int):
        self.size = size
        self._states: OrderedDict[UUID, Ticket] = OrderedDict()

    def get(self, stream: UUID) -> Ticket | None:
        state = self._states.get(stream)
        if state is not None:
            self._states.move_to_end(stream)
        return state

    def keep(self, states: dict[UUID, rules.State]) -> None:
        """Remember tickets only: their commands share one partition, hence one intake. A customer's plans
        arrive on the customer's partition, maybe at another intake, and an Open must see them at once."""
        for stream, state in states.items():
            if isinstance(state, Ticket):
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


class WriteSide:
    """Applies commands through a TicketDesk a batch at a time, riding out concurrent writers."""

    def __init__(
        self, desk: TicketDesk, recent_states: int = RECENT_STATES, *, read_states: StatesReader | None = None
    ):
        self.desk = desk
        self._recent = _RecentStates(recent_states)
        self._read_states = read_states or self._read_one_by_one

    def handle(self, command: Command) -> Outcome:
        """One command in its own transaction, retrying on a concurrent write."""
        return self.handle_batch([command])[0]

    def handle_batch(self, commands: Sequence[Command]) -> list[Outcome]:
        """Apply commands in order and save all their events in ONE transaction.

        1. Read every stream the commands need and no kept state covers, all at once (`StatesReader`).
        2. Decide each command against the states loaded so far (refusals don't stop the batch); plan
           subscriptions go first, see `_subscriptions_first`.
        3. Save every new event at once.
        4. Keep the new states for the next batch.
        5. On a conflict with a concurrent writer, forget the kept states and redo the batch on fresh ones.
        """
        for attempt in range(MAX_CONFLICT_RETRIES):
            workspace = self._load(commands)
            outcomes: list[Outcome] = [None] * len(commands)  # type: ignore[list-item]
            for index in _subscriptions_first(commands):
                outcomes[index] = self._decide(commands[index], workspace)
            if not all(map(workspace.trusts, outcomes)):
                self._recent.forget()
                continue
            try:
                if workspace.pending:
                    self.desk.save(*workspace.pending)
            except IntegrityError:
                self._recent.forget()
                time.sleep(random.uniform(0, BACKOFF_SECONDS * 2 ** min(attempt, 6)))
                continue
            self._recent.keep(workspace.states)
            return outcomes
        raise WriteContention(f"gave up after {MAX_CONFLICT_RETRIES} write conflicts")

    def _load(self, commands: Sequence[Command]) -> _Workspace:
        """A workspace holding the state of every stream the commands read: kept from a recent batch, or read."""
        workspace = _Workspace()
        to_read: list[UUID] = []
        for stream in dict.fromkeys(stream for command in commands for stream in rules.streams_read(command)):
            remembered = self._recent.get(stream)
            if remembered is None:
                to_read.append(stream)
            else:
                workspace.remembered.add(stream)
                workspace.states[stream] = remembered
        if to_read:
            stored = self._read_states(to_read)
            workspace.states.update((stream, stored.get(stream)) for stream in to_read)  # absent: no events yet
        return workspace

    def _read_one_by_one(self, streams: Collection[UUID]) -> dict[UUID, rules.State]:
        """The fallback for a store with no `StatesReader`: one read per stream."""
        return {stream: self.desk.state(stream) for stream in streams}

    def _decide(self, command: Command, workspace: _Workspace) -> Outcome:
        # The workspace holds every stream the batch reads (step 1), so it serves each command's `decide` as is.
        outcome = outcome_of(workspace.states, command, self.desk.policies)
        workspace.record(outcome)
        return outcome
