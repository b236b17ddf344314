"""The Decision builder: the events decided for one command, each applied to the ticket as it is added."""

from __future__ import annotations

from datetime import datetime

from domain import commands as cmd
from domain import events as ev
from domain import sla
from domain.calendar import Clock, clock_for
from domain.policy import ClockKind, Policy
from domain.sla import Metric
from domain.targets import calendar_for
from domain.ticket import Ticket, evolve


class Decision:
    """Events decided for one command, applied to the state as they are added so later steps see them."""

    def __init__(self, ticket: Ticket | None, command: cmd.Command, customer_id: str, policy: Policy):
        self.ticket = ticket
        self.command = command
        self.customer_id = customer_id
        self.policy = policy
        self.events: list[ev.TicketEvent] = []
        self.digest = command.digest

    @property
    def at(self) -> datetime:
        return self.command.occurred_at

    def add(self, event_type: type[ev.TicketEvent], **fields) -> None:
        event = event_type(
            originator_id=self.command.ticket_id,
            originator_version=(self.ticket.version if self.ticket else 0) + 1,
            event_id=cmd.event_id(self.command.command_id, self.command.ticket_id, len(self.events)),
            command_id=self.command.command_id,
            command_digest=self.digest,
            actor=self.command.actor,
            occurred_at=self.at,
            ticket_id=self.command.ticket_id,
            customer_id=self.customer_id,
            **fields,
        )
        self.events.append(event)
        self.ticket = evolve(self.ticket, event)

    def clock_for(self, kind: ClockKind) -> Clock:
        return clock_for(kind, calendar_for(self.policy))

    def deadline(self, metric: Metric) -> ev.Deadline | None:
        """The metric planned on the policy's calendar, as an event carries it; None while paused with time left."""
        planned = sla.plan(metric, self.clock_for, self.policy.at_risk_share)
        if planned.due_at is None:
            return None
        return ev.Deadline(
            metric=planned.name,
            target_minutes=int(planned.target.total_seconds() // 60),
            clock=planned.clock,
            due_at=planned.due_at,
            at_risk_at=planned.at_risk_at,
            policy_version=self.policy.version,
        )

    def notice_breaches(self) -> None:
        """Record every open metric whose due time has passed: a breach is recorded once, when first noticed."""
        for metric in self.ticket.open_metrics():
            if sla.is_overdue(metric, self.at):
                self.add(
                    ev.SlaBreached,
                    metric=metric.name,
                    due_at=metric.due_at,
                    breached_at=metric.due_at,
                    noticed_by=self.command.type,
                    target_minutes=int(metric.target.total_seconds() // 60),
                    clock=metric.clock,
                    policy_version=self.policy.version,
                )
