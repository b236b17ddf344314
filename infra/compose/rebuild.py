"""Rebuild and verify wired to the event store: the views that can be rebuilt, and the store's log as they read it."""

from __future__ import annotations

from domain import events as ev
from domain.desk import TicketDesk
from domain.policy import PolicyBook
from infra.store_log import EVERY_TICKET, Share, StoreLog
from projections.billing.projection import BillingProjection
from projections.billing.rebuildable import BILLING, billing_view
from projections.rebuild import RebuildableView
from projections.sla.projection import SlaProjection
from projections.sla.rebuildable import SLA_VIEW

__all__ = ["FOLDED", "PER_TICKET", "VIEWS", "VIEW_NAMES", "StoreLog", "store_log", "views"]

# The views that need no policy book; `views(book)` gives every view `nettask projections rebuild NAME` knows.
VIEWS: dict[str, RebuildableView] = {SLA_VIEW.name: SLA_VIEW}
VIEW_NAMES = (*VIEWS, BILLING)
# The events each view folds: the SLA view ticket events; billing every event, plans and closed months too.
FOLDED: dict[str, tuple[type[ev.DomainEvent], ...]] = {
    SLA_VIEW.name: SlaProjection.event_types,
    BILLING: BillingProjection.event_types,
}
# The views whose rows each depend on one ticket's events only: several processes may fill their fresh tables,
# each with a share of the tickets. Billing folds a customer's tickets together, so one process fills it.
PER_TICKET = frozenset({SLA_VIEW.name})


def views(book: PolicyBook) -> dict[str, RebuildableView]:
    return VIEWS | {BILLING: billing_view(book)}


def store_log(desk: TicketDesk, view: str, share: Share = EVERY_TICKET) -> StoreLog:
    """The log as the named view reads it: the events it folds, of the tickets of `share`."""
    return StoreLog(desk, FOLDED[view], share)
