"""The SLA projection: a batch of ticket events folded onto the stored states and written back, coalesced."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import Enum
from typing import Any, get_args, get_type_hints
from zoneinfo import ZoneInfo

from domain import events as ev
from projections.database import OnConflict, ProjectionDatabase
from projections.sla import tables
from projections.sla import view as sla_view
from projections.sla.view import BERLIN, MetricRow, SlaTicket, TicketRow, changed_metric_values, fold, ticket_values
from projections.state_cache import StateCache

# Fields every ticket event has: the timeline shows the rest as the event's detail.
_COMMON = frozenset(ev.TicketEvent.model_fields) | {"deadlines"}


@dataclass(frozen=True)
class Failure:
    """An event the view cannot take: a gap in its ticket's versions, or one the fold refuses."""

    event: ev.TicketEvent
    kind: str
    reason: str


@dataclass
class Applied:
    applied: int = 0
    repeats: int = 0
    failures: list[Failure] = field(default_factory=list)


class SlaProjection:
    """Keeps `sla_tickets`, `sla_metrics` and `sla_ticket_events` equal to a fold of every ticket's events."""

    name = "sla"
    # Ticket events only: customers' plans and month closings change no ticket.
    event_types: tuple[type[ev.DomainEvent], ...] = (ev.TicketEvent,)

    def __init__(self, db: ProjectionDatabase, zone: ZoneInfo = BERLIN):
        self.db = db
        self.zone = zone
        # Each ticket's folded state as last read or written: the next batch parses only what changed meanwhile.
        self.states: StateCache[SlaTicket] = StateCache(sla_view.load_state, sla_view.dump_state)
        self._ticket_values = _row_values(TicketRow, db)
        self._metric_values = _row_values(MetricRow, db)

    def create_tables(self, cursor: Any) -> None:
        tables.create_tables(self.db, cursor)

    def apply(self, cursor: Any, events: Sequence[ev.TicketEvent]) -> Applied:
        """Fold the events (in topic order) onto the stored states; write each touched ticket's rows once."""
        keys = [str(event.ticket_id) for event in events]
        stored = self._load(cursor, set(keys))
        states = dict(stored)
        result, touched, timeline = Applied(), set(), []
        for key, event in zip(keys, events, strict=True):
            folded = self._fold_one(states.get(key), event, result)
            if folded is not None:
                states[key] = folded
                touched.add(key)
                timeline.append(self._timeline_row(key, event))
        self._write(cursor, [(stored.get(key), states[key]) for key in sorted(touched)], timeline)
        return result

    def _fold_one(self, state: SlaTicket | None, event: ev.TicketEvent, result: Applied) -> SlaTicket | None:
        """The state after `event`, or None when it is a repeat (counted) or cannot be applied (a failure)."""
        held = state.ticket.version if state else 0
        if event.originator_version <= held:
            result.repeats += 1  # the relay may publish an event twice; the view has it already
            return None
        if event.originator_version != held + 1:
            reason = f"version {event.originator_version} of ticket {event.ticket_id}, but the view holds {held}"
            result.failures.append(Failure(event, "version-gap", reason))
            return None
        try:
            folded = fold(state, event)
        except Exception as error:  # the domain refuses it: the event, not the projector, is at fault
            result.failures.append(Failure(event, "unappliable", f"{type(error).__name__}: {error}"))
            return None
        result.applied += 1
        return folded

    def _load(self, cursor: Any, ticket_ids: Iterable[str]) -> dict[str, SlaTicket]:
        rows = self.db.in_chunks(
            cursor, f"SELECT ticket_id, state FROM {self.db.table(tables.TICKETS)} WHERE ticket_id IN ({{marks}})",
            ticket_ids,
        )  # fmt: skip
        return {ticket_id: self.states.load(ticket_id, state) for ticket_id, state in rows}

    def _write(self, cursor: Any, states: list[tuple[SlaTicket | None, SlaTicket]], timeline: list[tuple]) -> None:
        """Each touched ticket's row, and the rows of its metrics that differ from the stored state's (`states`
        pairs the state the database held, if any, with the new one); the timeline's new rows."""
        if not states:
            return
        write, replace, keep = self.db.write_rows, OnConflict.REPLACE, OnConflict.KEEP
        tickets = [self._ticket_row(state) for _, state in states]
        write(cursor, tables.TICKETS, tables.TICKET_COLUMNS, ("ticket_id",), tickets, replace)
        metrics = [
            self._metric_values(row)
            for before, state in states
            for row in changed_metric_values(before, state, self.zone)
        ]
        write(cursor, tables.METRICS, tables.METRIC_COLUMNS, ("ticket_id", "metric"), metrics, replace)
        write(cursor, tables.TIMELINE, tables.TIMELINE_COLUMNS, ("ticket_id", "version"), timeline, keep)

    def _ticket_row(self, state: SlaTicket) -> tuple:
        values = self._ticket_values(ticket_values(state))
        return (*values, self.states.dump(values[0], state))

    def _timeline_row(self, key: str, event: ev.TicketEvent) -> tuple:
        detail = event.model_dump_json(exclude=_COMMON)
        return (
            key, event.originator_version, str(event.event_id), event.type,
            self.db.instant(event.occurred_at), event.actor, detail,
        )  # fmt: skip


def _row_values(row_type: type, db: ProjectionDatabase) -> Callable[[tuple], tuple]:
    """A row's values (in the row type's field order) as the database takes them: instants as it stores them,
    enums as their values. psycopg would write an Enum's name ("OPEN"), not its value ("open"). Which columns
    need converting is found once, from the row type's field types."""
    hints = get_type_hints(row_type)
    kinds = [hints[f.name] for f in fields(row_type)]
    converting = [(i, convert) for i, kind in enumerate(kinds) if (convert := _converter(kind, db))]

    def values(row: tuple) -> tuple:
        found = list(row)
        for i, convert in converting:
            found[i] = convert(found[i])
        return tuple(found)

    return values


def _converter(annotation: Any, db: ProjectionDatabase) -> Callable[[Any], Any] | None:
    kinds = get_args(annotation) or (annotation,)
    if datetime in kinds:
        return None if db.postgres else db.instant
    if any(isinstance(kind, type) and issubclass(kind, Enum) for kind in kinds):
        return _enum_value
    return None


def _enum_value(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value
