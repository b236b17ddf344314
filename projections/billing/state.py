"""The billing fold's state split to be stored: the closings (shared), and per customer their usage and statements."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any
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
        for incident in state.incidents:
            usage.keep(incident)
        usage.callbacks.extend(state.callbacks)
        usage.references.update(state.references)
        fold.frozen.update({(customer_id, s.month): s for s in state.frozen})
        fold.carried.update({(customer_id, month): list(lines) for month, lines in state.carried})
    return fold


def closings_of(fold: BillingFold) -> Closings:
    return Closings(closed=tuple(sorted(fold.closed.items())), clock=fold.clock, next_to_close=fold._next_to_close)


def customers_of(fold: BillingFold, customer_ids: Iterable[str]) -> dict[str, CustomerBilling]:
    """Each named customer's share of the fold, to be stored; the fold's items are grouped by customer once."""
    usage = fold.usage
    incidents, callbacks = _by_customer(usage.incidents.values()), _by_customer(usage.callbacks)
    frozen = _by_owner(sorted(fold.frozen.items()))
    carried = _by_owner(sorted(fold.carried.items()))
    shares = {}
    for customer_id in customer_ids:
        mine = tuple(incidents.get(customer_id, ()))
        shares[customer_id] = CustomerBilling(
            subscriptions=tuple(usage.subscriptions.get(customer_id, ())),
            incidents=mine,
            callbacks=tuple(callbacks.get(customer_id, ())),
            references={i.ticket_id: usage.references[i.ticket_id] for i in mine if i.ticket_id in usage.references},
            frozen=tuple(s for _, s in frozen.get(customer_id, ())),
            carried=tuple((month, tuple(lines)) for month, lines in carried.get(customer_id, ())),
        )
    return shares


def _by_customer(items: Iterable[Any]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for item in items:
        grouped[item.customer_id].append(item)
    return grouped


def _by_owner(items: Iterable[tuple[tuple[str, Month], Any]]) -> dict[str, list[tuple[Month, Any]]]:
    """Items keyed by (customer, month), in the given order, as (month, item) per customer."""
    grouped: dict[str, list[tuple[Month, Any]]] = defaultdict(list)
    for (owner, month), item in items:
        grouped[owner].append((month, item))
    return grouped
