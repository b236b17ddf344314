"""The billing fold: events in recorded order to statements per customer and month, closed months frozen."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from domain import events as ev
from domain.billing import adjustments_for, build_statement, closing_instant, is_past_closing, policy_for_month
from domain.money import Month
from domain.policy import PolicyBook
from domain.statement import AdjustmentLine, Statement
from projections.billing.usage import UsageLedger

CustomerMonth = tuple[str, Month]


@dataclass
class BillingFold:
    """What every statement is, as of the events folded so far.

    Time in the fold is the latest `occurred_at` seen: once it reaches a month's closing instant, or a
    MonthClosed arrives, that month's statements are frozen. A later event that would change a frozen
    statement becomes adjustment lines on the customer's next open statement instead.
    """

    book: PolicyBook
    usage: UsageLedger = field(default_factory=UsageLedger)
    closed: dict[Month, datetime] = field(default_factory=dict)
    frozen: dict[CustomerMonth, Statement] = field(default_factory=dict)
    # Adjustment lines by the (customer, month) whose statement carries them.
    carried: dict[CustomerMonth, list[AdjustmentLine]] = field(default_factory=dict)
    clock: datetime | None = None
    _seen: set[UUID] = field(default_factory=set)
    _next_to_close: Month | None = None
    # The next month to close and its closing instant, as last computed: most events come before it.
    _next_closing: tuple[Month, datetime] | None = None

    def apply_all(self, events: Iterable[ev.DomainEvent]) -> BillingFold:
        for event in events:
            self.apply(event)
        return self

    def apply(self, event: ev.DomainEvent) -> None:
        """Fold one event.

        1. A repeated delivery (an event id seen before) changes nothing.
        2. Advance the clock: months whose closing instant has come are frozen before the event counts.
        3. MonthClosed freezes its month.
        4. Fold the usage; if it belongs to a frozen statement, carry the difference forward as adjustments.
        5. A new plan freezes the customer's statements of months already closed, as they stand.
        """
        if event.event_id in self._seen:
            return
        self._seen.add(event.event_id)
        self._advance(event.occurred_at)
        if isinstance(event, ev.MonthClosed):
            self._close(Month.parse(event.month), event.closed_at)
            return
        touched = self.usage.apply(event)
        if touched is not None:
            self._adjust(touched, event)
        if isinstance(event, ev.PlanSubscribed):
            self._freeze_closed_months(event.customer_id)

    def _advance(self, now: datetime) -> None:
        self.clock = max(self.clock or now, now)
        due = self._next_closing
        if due is not None and due[0] == self._next_to_close and self.clock < due[1]:
            return  # the usual case: the next month to close is not due yet, nothing to look up
        month = self._next_to_close or Month.of(self.book.policies[0].starts_at, self.zone)
        while is_past_closing(policy_for_month(self.book, month), month, self.clock):
            if month not in self.closed:
                self._close(month, self.closing_instant(month))
            month = month.next()
        self._next_to_close = month
        self._next_closing = (month, self.closing_instant(month))

    def _close(self, month: Month, closed_at: datetime) -> None:
        if month in self.closed:
            return  # closed once: a second closing (the closing day after an operator's close) changes nothing
        self.closed[month] = closed_at
        for customer_id in self.usage.subscriptions:
            self._freeze(customer_id, month)

    def _freeze(self, customer_id: str, month: Month) -> None:
        if (customer_id, month) in self.frozen:
            return
        plan = self.usage.billed_plan(customer_id, month, self.book)
        if plan is not None:
            as_of = self.closed[month]
            self.frozen[customer_id, month] = self.build(customer_id, month, plan, as_of, closed=True)

    def _freeze_closed_months(self, customer_id: str) -> None:
        for month in sorted(self.closed):
            self._freeze(customer_id, month)

    def _adjust(self, touched: tuple[str, datetime], event: ev.DomainEvent) -> None:
        """Compare the frozen statement with what it would now say; the difference goes on the next open one."""
        customer_id, at = touched
        month = Month.of(at, self.zone)
        before = self.frozen.get((customer_id, month))
        if before is None:
            return
        now = self.build(customer_id, month, before.plan, self.clock or at)
        lines = adjustments_for(before, now, already_adjusted=self.carried_for(customer_id, month))
        target = self.next_open_month(month)
        self.carried.setdefault((customer_id, target), []).extend(
            line.model_copy(update={"source_event_ids": (event.event_id,)}) for line in lines
        )

    def carried_for(self, customer_id: str, month: Month) -> list[AdjustmentLine]:
        """Every adjustment of the customer's closed `month` issued so far, whichever statement carries it."""
        carried = (lines for (owner, _), lines in self.carried.items() if owner == customer_id)
        return [line for lines in carried for line in lines if line.month == month]

    def next_open_month(self, month: Month) -> Month:
        """The first month after `month` that is not closed: where its adjustments are carried."""
        later = month.next()
        while later in self.closed:
            later = later.next()
        return later

    def build(self, customer_id: str, month: Month, plan: str, as_of: datetime, *, closed: bool = False) -> Statement:
        """The statement from the usage folded so far, with the adjustments carried onto it."""
        incidents, callbacks = self.usage.usage_of(customer_id, month, self.book)
        adjustments = self.carried.get((customer_id, month), ())
        return build_statement(
            self.book, customer_id, month, plan, incidents, callbacks, as_of=as_of, adjustments=adjustments,
            closed=closed,
        )  # fmt: skip

    def closing_instant(self, month: Month) -> datetime:
        return closing_instant(policy_for_month(self.book, month), month)

    @property
    def zone(self):
        return self.book.latest.calendar.zone
