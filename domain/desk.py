"""TicketDesk, the eventsourcing application: load the command's streams, one domain decision, one save."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import Recording
from eventsourcing.utils import Environment

from domain import rules
from domain.commands import Command
from domain.errors import DomainError
from domain.events import DomainEvent
from domain.persistence import PydanticMapper, stored_as_json
from domain.policy import PolicyBook
from domain.ticket import Ticket


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


def outcome_of(states: rules.States, command: Command, policies: PolicyBook) -> Outcome:
    """`rules.decide` as an outcome: a refusal becomes the outcome's reason instead of an exception."""
    try:
        events = rules.decide(states, command, policies)
    except DomainError as refusal:
        return Outcome(command, OutcomeStatus.REFUSED, reason=str(refusal), kind=refusal.kind)
    return Outcome(command, OutcomeStatus.APPLIED if events else OutcomeStatus.UNCHANGED, tuple(events))


class TicketDesk(Application[UUID]):
    """The ticket lifecycle engine's write side on the event store."""

    name = "TicketDesk"

    def __init__(self, policies: PolicyBook, env: dict[str, str] | None = None):
        super().__init__(env)
        self.policies = policies

    def construct_env(self, name: str, env: dict[str, str] | None = None) -> Environment:
        """Only what the caller passes: the library would read the process environment too, where a variable
        could swap the event mapper, compress or encipher the stored events, or move the store."""
        return Environment(name, dict(env or {}))

    def construct_mapper(self) -> PydanticMapper:
        return stored_as_json()

    def handle(self, command: Command) -> Outcome:
        """Load the streams the command reads, decide, save its events in one transaction.

        A concurrent writer that saved the same stream first makes the save raise IntegrityError; the intake's
        write side (consumers/write_side.py) decides again on fresh states.
        """
        states = {stream: self.state(stream) for stream in rules.streams_read(command)}
        outcome = outcome_of(states, command, self.policies)
        if outcome.events:
            self.save(*outcome.events)
        return outcome

    def save(self, *events: DomainEvent, **kwargs: Any) -> list[Recording[UUID]]:  # type: ignore[override]
        """Events into the store in one transaction, as the library's save does with events, without its check of
        every object against its typing Protocols (about 15 µs an event, more than deciding the event): the desk
        saves events only, never aggregates, and keeps no snapshots and no aggregate cache."""
        recordings = self.events.put(events, **kwargs)
        self._notify(recordings)
        return recordings

    def state(self, stream: UUID) -> rules.State:
        """A stream's current state (a ticket, a customer's plans, a closed month), or None with no events."""
        try:
            return self.repository.get(stream, projector_func=rules.project)
        except AggregateNotFoundError:
            return None

    def ticket(self, ticket_id: UUID) -> Ticket | None:
        """The ticket's current state, or None if it was never opened."""
        return self.state(ticket_id)  # type: ignore[return-value]

    def events_of(self, stream: UUID) -> Iterable[DomainEvent]:
        return self.events.get(stream)

    def recorded_events(self, page: int = 1000) -> Iterator[DomainEvent]:
        """Every stored event in the order it was recorded, read from the notification log a page at a time."""
        start = 1
        while notifications := self.recorder.select_notifications(start=start, limit=page):
            yield from (self.mapper.to_domain_event(n) for n in notifications)
            start = notifications[-1].id + 1
