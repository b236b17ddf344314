"""What the API reads: the projections' database and the event store, each used by one request at a time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from domain import events as ev
from domain.desk import TicketDesk
from domain.policy import PolicyBook
from infra.compose.desk import build_desk
from infra.compose.projections import build_projection_database
from infra.settings import Settings
from projections.billing.projection import BillingProjection
from projections.database import ProjectionDatabase
from projections.sla.projection import SlaProjection


class Sources:
    """The projections' database (one connection, so one request at a time) and a desk built on first use."""

    def __init__(self, settings: Settings, book: PolicyBook):
        self.settings = settings
        self.book = book
        self.db = _views(settings, book)
        self._desk: TicketDesk | None = None
        # Requests run in a thread pool; the database's connection and the desk serve one of them at a time.
        self._lock = threading.Lock()

    @contextmanager
    def views(self) -> Iterator[ProjectionDatabase]:
        with self._lock:
            yield self.db

    def history(self, ticket_id: UUID) -> list[ev.TicketEvent]:
        """The ticket's events from the store, in stream order: what explanations are computed from."""
        with self._lock:
            if self._desk is None:
                self._desk = build_desk(self.settings, self.book)
            return list(self._desk.events_of(ticket_id))

    def close(self) -> None:
        with self._lock:
            self.db.close()
            if self._desk is not None:
                self._desk.close()
                self._desk = None


def _views(settings: Settings, book: PolicyBook) -> ProjectionDatabase:
    """The projections' database with the SLA and billing tables in place (empty until the projector ran)."""
    db = build_projection_database(settings)
    db.create_schema()
    with db.transaction() as cursor:
        SlaProjection(db).create_tables(cursor)  # first: the analysts' views made with the billing tables join them
        BillingProjection(db, book).create_tables(cursor)
    return db
