"""Rebuild and verify wired to the event store: the views that can be rebuilt, and the store's log as they read it."""

from __future__ import annotations

from functools import cache

from eventsourcing.utils import resolve_topic

from domain import events as ev
from domain.desk import TicketDesk
from projections.rebuild import RebuildableView
from projections.sla.rebuildable import SLA_VIEW

# The views `nettask projections rebuild NAME` knows; billing joins by registering its RebuildableView here.
VIEWS: dict[str, RebuildableView] = {SLA_VIEW.name: SLA_VIEW}


class StoreLog:
    """The desk's notification log read in pages, as TicketDesk.recorded_events does, ticket events only."""

    def __init__(self, desk: TicketDesk):
        self.desk = desk

    def last_id(self) -> int:
        return self.desk.recorder.max_notification_id() or 0

    def read(self, after: int, limit: int, upto: int) -> tuple[list[ev.TicketEvent], int]:
        notifications = self.desk.recorder.select_notifications(start=after + 1, limit=limit, stop=upto)
        if not notifications:
            return [], upto
        # Customers' plans and closed months travel on the same log; the views here fold ticket events. Each is
        # read as the mapper reads it (its class from the topic, validated), straight from the stored JSON.
        kinds = [(_ticket_event_type(n.topic), n.state) for n in notifications]
        return [kind.model_validate_json(state) for kind, state in kinds if kind is not None], notifications[-1].id


@cache
def _ticket_event_type(topic: str) -> type[ev.TicketEvent] | None:
    kind = resolve_topic(topic)
    return kind if issubclass(kind, ev.TicketEvent) else None
