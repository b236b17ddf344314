"""Breach explanations for analysts: why each breached metric was due when it was, kept as a table.

The explanation (policy version, clock, start, pauses with their reasons, closed hours and holidays skipped) is
computed by the domain's own `explain_metric` over the ticket's events, the same as `nettask sla explain` gives
from the event store. To have those events at hand, the projection keeps each ticket's stored JSON events; a
breach arriving in a batch is explained over them and the batch's own events of that ticket.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import orjson

from domain import events as ev
from domain.explain import explain_metric
from domain.policy import PolicyBook
from projections.database import OnConflict, ProjectionDatabase
from projections.sla.projection import Applied, Failure

HISTORY = "sla_event_history"
EXPLANATIONS = "sla_breach_explanations"
HISTORY_COLUMNS = ("ticket_id", "version", "event_type", "event")


class ExplanationProjection:
    """Keeps `sla_event_history` (each ticket's events) and `sla_breach_explanations` (one row per breach)."""

    name = "sla-explanations"
    event_types: tuple[type[ev.DomainEvent], ...] = (ev.TicketEvent,)
    # The projector hands over each event's JSON as the relay published it, which is the stored JSON byte for byte
    # (the store keeps the model's own JSON, the relay forwards it unchanged): kept as it is, not dumped again.
    reads_stored_json = True

    def __init__(self, db: ProjectionDatabase, book: PolicyBook):
        self.db = db
        self.book = book

    def create_tables(self, cursor: Any) -> None:
        instant = self.db.instant_type
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {self.db.table(HISTORY)} (ticket_id TEXT NOT NULL, version INTEGER NOT "
            "NULL, event_type TEXT NOT NULL, event TEXT NOT NULL, PRIMARY KEY (ticket_id, version))"
        )
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {self.db.table(EXPLANATIONS)} (ticket_id TEXT NOT NULL, metric TEXT NOT "
            f"NULL, policy_version TEXT NOT NULL, clock TEXT NOT NULL, target_minutes INTEGER NOT NULL, started_at "
            f"{instant} NOT NULL, due_at {instant}, breached_at {instant}, explanation TEXT NOT NULL, "
            "PRIMARY KEY (ticket_id, metric))"
        )

    def apply(
        self, cursor: Any, events: Sequence[ev.DomainEvent], stored_json: Mapping[UUID, bytes] | None = None
    ) -> Applied:
        """1. Keep the batch's events not held yet (their `stored_json` when given); 2. explain every breach among
        them over the ticket's events."""
        result = Applied()
        keys = [str(e.ticket_id) for e in events]
        held = self._versions(cursor, set(keys))
        fresh = []
        for key, event in zip(keys, events, strict=True):
            if event.originator_version <= held.get(key, 0):
                result.repeats += 1
                continue
            held[key] = event.originator_version
            fresh.append((key, event))
        self._keep(cursor, fresh, stored_json or {})
        for breach in (e for _, e in fresh if isinstance(e, ev.SlaBreached)):
            self._explain(cursor, breach, result)
        result.applied = len(fresh)
        return result

    def _versions(self, cursor: Any, tickets: set[str]) -> dict[str, int]:
        rows = self.db.in_chunks(
            cursor,
            f"SELECT ticket_id, MAX(version) FROM {self.db.table(HISTORY)} WHERE ticket_id IN ({{marks}}) "
            "GROUP BY ticket_id",
            tickets,
        )
        return dict(rows)

    def _keep(self, cursor: Any, events: list[tuple[str, ev.DomainEvent]], stored_json: Mapping[UUID, bytes]) -> None:
        rows = [(key, e.originator_version, e.type, _json(e, stored_json)) for key, e in events]
        self.db.write_rows(cursor, HISTORY, HISTORY_COLUMNS, ("ticket_id", "version"), rows, OnConflict.KEEP)

    def _explain(self, cursor: Any, breach: ev.SlaBreached, result: Applied) -> None:
        history = self._history(cursor, str(breach.ticket_id), breach.originator_version)
        try:
            why = explain_metric(history, breach.metric, self.book)
        except Exception as error:  # noqa: BLE001 - one ticket's problem must not stop the view
            result.failures.append(Failure(breach, "unexplainable", f"{type(error).__name__}: {error}"))
            return
        row = (
            why.ticket_id, why.metric, why.policy_version, str(why.clock), why.target_minutes,
            self.db.instant(why.started_at), self.db.instant(why.due_at), self.db.instant(why.breached_at),
            why.model_dump_json(),
        )  # fmt: skip
        cursor.execute(
            f"DELETE FROM {self.db.table(EXPLANATIONS)} WHERE ticket_id = {self.db.mark} AND metric = {self.db.mark}",
            (why.ticket_id, why.metric),
        )
        cursor.execute(f"INSERT INTO {self.db.table(EXPLANATIONS)} VALUES ({self.db.marks(9)})", row)

    def _history(self, cursor: Any, ticket_id: str, up_to: int) -> list[ev.TicketEvent]:
        cursor.execute(
            f"SELECT event_type, event FROM {self.db.table(HISTORY)} WHERE ticket_id = {self.db.mark} "
            f"AND version <= {self.db.mark} ORDER BY version",
            (ticket_id, up_to),
        )
        return [_event(event_type, text) for event_type, text in cursor.fetchall()]


def _json(event: ev.DomainEvent, stored_json: Mapping[UUID, bytes]) -> str:
    stored = stored_json.get(event.event_id)
    return event.model_dump_json() if stored is None else stored.decode()


def _event(event_type: str, text: str) -> ev.TicketEvent:
    return getattr(ev, event_type).model_validate(orjson.loads(text))


def explanations_by_ticket(db: ProjectionDatabase, ticket_id: str) -> dict[str, dict]:
    """The stored explanations of a ticket's breaches, by metric."""
    rows = db.query(
        f"SELECT metric, explanation FROM {db.table(EXPLANATIONS)} WHERE ticket_id = {db.mark}", (ticket_id,)
    )
    found: dict[str, dict] = defaultdict(dict)
    for metric, text in rows:
        found[metric] = orjson.loads(text)
    return dict(found)
