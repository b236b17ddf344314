"""The billing fold's state as rows: closings (shared), and per ticket, customer or (customer, month) the rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from pydantic import AwareDatetime, TypeAdapter

from domain.billing import CallbackUse, Incident, Month
from domain.customer import Subscription
from domain.frozen import Frozen
from domain.policy import PolicyBook
from domain.statement import AdjustmentLine, Statement
from projections.billing.fold import BillingFold, CustomerMonth
from projections.billing.usage import UsageLedger


class Closings(Frozen):
    """What the fold knows of time: the months closed and when, its clock, and the next month to close."""

    closed: tuple[tuple[Month, AwareDatetime], ...] = ()
    clock: AwareDatetime | None = None
    next_to_close: Month | None = None


CLOSINGS = TypeAdapter(Closings)
INCIDENT = TypeAdapter(Incident)
CALLBACK = TypeAdapter(CallbackUse)
SUBSCRIPTIONS = TypeAdapter(list[Subscription])
LINES = TypeAdapter(list[AdjustmentLine])
STATEMENT = TypeAdapter(Statement)


@dataclass
class Loaded:
    """The rows a batch or a refresh read: just what the fold will ask of, so it grows with the batch, not history."""

    subscriptions: dict[str, list[Subscription]] = field(default_factory=dict)
    incidents: dict[UUID, Incident] = field(default_factory=dict)  # by ticket id
    callbacks: dict[str, CallbackUse] = field(default_factory=dict)  # event id -> callback
    frozen: dict[CustomerMonth, Statement] = field(default_factory=dict)
    carried: dict[CustomerMonth, list[AdjustmentLine]] = field(default_factory=dict)


def restore(book: PolicyBook, closings: Closings, loaded: Loaded) -> BillingFold:
    """A fold that goes on from the loaded rows (the others are not asked of)."""
    usage = UsageLedger()
    fold = BillingFold(book, usage=usage, closed=dict(closings.closed), clock=closings.clock)
    fold._next_to_close = closings.next_to_close
    for customer_id, subscriptions in loaded.subscriptions.items():
        if subscriptions:  # a ticket may come before its customer's plan: no plan, no statement yet
            usage.subscriptions[customer_id] = list(subscriptions)
    for incident in loaded.incidents.values():
        usage.keep(incident)
        if incident.reference is not None:
            usage.references[incident.ticket_id] = incident.reference
    usage.callbacks.extend(loaded.callbacks.values())
    fold.frozen.update(loaded.frozen)
    fold.carried.update({key: list(lines) for key, lines in loaded.carried.items()})
    return fold


def closings_of(fold: BillingFold) -> Closings:
    return Closings(closed=tuple(sorted(fold.closed.items())), clock=fold.clock, next_to_close=fold._next_to_close)


@dataclass
class Changes:
    """What a batch changed of the loaded rows, to be written back; and the (customer, month) statements it moves."""

    incidents: list[Incident]
    callbacks: list[CallbackUse]
    subscriptions: dict[str, list[Subscription]]
    frozen: dict[CustomerMonth, Statement]
    carried: dict[CustomerMonth, list[AdjustmentLine]]

    def touched(self, zone) -> set[tuple[str, str]]:
        """The (customer, month) statements these changes move; month "*" for every month of a customer."""
        pairs = {(i.customer_id, str(Month.of(i.opened_at, zone))) for i in self.incidents}
        pairs |= {(c.customer_id, str(Month.of(c.done_at, zone))) for c in self.callbacks}
        pairs |= {(c, str(m)) for c, m in [*self.frozen, *self.carried]}
        return pairs | {(c, EVERY_MONTH) for c in self.subscriptions}


# A refresh mark's month that stands for every month of the customer (their plans changed).
EVERY_MONTH = "*"


def changes_of(fold: BillingFold, loaded: Loaded) -> Changes:
    usage = fold.usage
    return Changes(
        incidents=[i for tid, i in usage.incidents.items() if loaded.incidents.get(tid) != i],
        callbacks=usage.callbacks[len(loaded.callbacks) :],
        subscriptions={c: s for c, s in usage.subscriptions.items() if loaded.subscriptions.get(c) != s},
        frozen={key: s for key, s in fold.frozen.items() if key not in loaded.frozen},
        carried={key: lines for key, lines in fold.carried.items() if loaded.carried.get(key) != lines},
    )
