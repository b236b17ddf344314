"""Rebuild and verify wired to the event store: the views that can be rebuilt, and the store's log as they read it."""

from __future__ import annotations

from eventsourcing.utils import resolve_topic

from domain import events as ev
from domain.desk import TicketDesk
from domain.policy import PolicyBook
from projections.billing.projection import BillingProjection
from projections.billing.rebuildable import BILLING, billing_view
from projections.rebuild import RebuildableView
from projections.sla.projection import SlaProjection
from projections.sla.rebuildable import SLA_VIEW

# The views that need no policy book; `views(book)` gives every view `nettask projections rebuild NAME` knows.
VIEWS: dict[str, RebuildableView] = {SLA_VIEW.name: SLA_VIEW}
VIEW_NAMES = (*VIEWS, BILLING)
# The events each view folds: the SLA view ticket events; billing every event, plans and closed months too.
FOLDED: dict[str, tuple[type[ev.DomainEvent], ...]] = {
    SLA_VIEW.name: SlaProjection.event_types,
    BILLING: BillingProjection.event_types,
}


def views(book: PolicyBook) -> dict[str, RebuildableView]:
    return VIEWS | {BILLING: billing_view(book)}


class StoreLog:
    """The desk's notification log read in pages, as TicketDesk.recorded_events does, the events of `kinds` only."""

    def __init__(self, desk: TicketDesk, kinds: tuple[type[ev.DomainEvent], ...] = (ev.TicketEvent,)):
        self.desk = desk
        self.kinds = kinds
        self._classes: dict[str, type[ev.DomainEvent] | None] = {}

    def last_id(self) -> int:
        return self.desk.recorder.max_notification_id() or 0

    def read(self, after: int, limit: int, upto: int) -> tuple[list[ev.TicketEvent], int]:
        notifications = self.desk.recorder.select_notifications(start=after + 1, limit=limit, stop=upto)
        if not notifications:
            return [], upto
        # Customers' plans and closed months travel on the same log; the SLA view folds ticket events only. Each
        # is read as the mapper reads it (its class from the topic, validated), straight from the stored JSON.
        kinds = [(self._class_of(n.topic), n.state) for n in notifications]
        return [kind.model_validate_json(state) for kind, state in kinds if kind is not None], notifications[-1].id

    def _class_of(self, topic: str) -> type[ev.DomainEvent] | None:
        """The event class stored under `topic`, or None for one this view does not fold."""
        if topic not in self._classes:
            kind = resolve_topic(topic)
            self._classes[topic] = kind if issubclass(kind, self.kinds) else None
        return self._classes[topic]


def store_log(desk: TicketDesk, view: str) -> StoreLog:
    """The log as the named view reads it."""
    return StoreLog(desk, FOLDED[view])
