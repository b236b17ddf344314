"""The billing fold's state split to be stored: the closings (shared), and per customer their usage and statements."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from uuid import UUID

from pydantic import AwareDatetime, TypeAdapter

from domain.billing import CallbackUse, Incident, Month
from domain.customer import Subscription
from domain.frozen import Frozen
from domain.policy import PolicyBook
from domain.statement import AdjustmentLine, Statement
from projections.billing.fold import BillingFold
from projections.billing.usage import UsageLedger


class Closings(Frozen):
    """What the fold knows of time: the months closed and when, its clock, and the next month to close."""

    closed: tuple[tuple[Month, AwareDatetime], ...] = ()
    clock: AwareDatetime | None = None
    next_to_close: Month | None = None


class CustomerBilling(Frozen):
    """One customer's share of the fold: plans, incidents, callbacks, frozen statements, adjustments carried."""

    subscriptions: tuple[Subscription, ...] = ()
    incidents: tuple[Incident, ...] = ()
    callbacks: tuple[CallbackUse, ...] = ()
    references: dict[UUID, str] = {}
    frozen: tuple[Statement, ...] = ()
    carried: tuple[tuple[Month, tuple[AdjustmentLine, ...]], ...] = ()


CLOSINGS = TypeAdapter(Closings)
CUSTOMER = TypeAdapter(CustomerBilling)


def restore(book: PolicyBook, closings: Closings, customers: Mapping[str, CustomerBilling]) -> BillingFold:
    """A fold that goes on from the stored state of these customers (the others' are not needed)."""
    usage = UsageLedger()
    fold = BillingFold(book, usage=usage, closed=dict(closings.closed), clock=closings.clock)
    fold._next_to_close = closings.next_to_close
    for customer_id, state in customers.items():
        if state.subscriptions:  # a ticket may come before its customer's plan: no plan, no statement yet
            usage.subscriptions[customer_id] = list(state.subscriptions)
        usage.incidents.update({incident.ticket_id: incident for incident in state.incidents})
        usage.callbacks.extend(state.callbacks)
        usage.references.update(state.references)
        fold.frozen.update({(customer_id, s.month): s for s in state.frozen})
        fold.carried.update({(customer_id, month): list(lines) for month, lines in state.carried})
    return fold


def closings_of(fold: BillingFold) -> Closings:
    return Closings(closed=tuple(sorted(fold.closed.items())), clock=fold.clock, next_to_close=fold._next_to_close)


def customers_of(fold: BillingFold, customer_ids: Iterable[str]) -> dict[str, CustomerBilling]:
    """Each named customer's share of the fold, to be stored."""
    return {customer_id: _customer(fold, customer_id) for customer_id in customer_ids}


def _customer(fold: BillingFold, customer_id: str) -> CustomerBilling:
    usage = fold.usage
    incidents = tuple(i for i in usage.incidents.values() if i.customer_id == customer_id)
    tickets = {i.ticket_id for i in incidents}
    return CustomerBilling(
        subscriptions=tuple(usage.subscriptions.get(customer_id, ())),
        incidents=incidents,
        callbacks=tuple(c for c in usage.callbacks if c.customer_id == customer_id),
        references={ticket: ref for ticket, ref in usage.references.items() if ticket in tickets},
        frozen=tuple(s for (owner, _), s in sorted(fold.frozen.items()) if owner == customer_id),
        carried=tuple((m, tuple(lines)) for (owner, m), lines in sorted(fold.carried.items()) if owner == customer_id),
    )
