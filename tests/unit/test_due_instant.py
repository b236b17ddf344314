"""SPEC 5: "within 8 h" includes the due instant. A metric breaches at any instant after its due time, never at it;
at-risk applies from the instant its share is reached, that instant included."""

from __future__ import annotations

from domain.sla import MetricState
from domain.watch import due_commands
from tests.unit.builders import at, flag_at_risk, opened, record_breach, withdraw

# basic plan, severity C: 8 h on business hours from Monday 10:00, so due Monday 18:00, at risk at 16:00.
OPENED, AT_RISK, DUE = "2026-03-02T10:00+01:00", "2026-03-02T16:00+01:00", "2026-03-02T18:00+01:00"
AFTER_DUE = "2026-03-02T18:00:01+01:00"


def test_the_watchdog_sees_no_breach_at_the_due_instant_and_one_just_after():
    ticket = opened(plan="basic", severity="C", at=OPENED)
    assert ticket.due() == at(DUE)

    assert [c.type for c in due_commands(ticket.state, at(DUE))] == ["FlagSlaAtRisk"]
    assert [c.type for c in due_commands(ticket.state, at(AFTER_DUE))] == ["RecordSlaBreach"]


def test_a_breach_command_at_the_due_instant_is_refused_and_one_after_it_recorded():
    ticket = opened(plan="basic", severity="C", at=OPENED)

    early = ticket.send(record_breach(ticket.id, DUE))
    late = ticket.send(record_breach(ticket.id, AFTER_DUE))

    assert early.status == "refused" and "breaches only after that" in early.reason
    assert late.status == "applied"
    assert (ticket.metric().state, late.events[0].breached_at) == (MetricState.BREACHED, at(DUE))


def test_at_risk_applies_from_the_instant_its_share_is_reached():
    ticket = opened(plan="basic", severity="C", at=OPENED)

    assert [c.type for c in due_commands(ticket.state, at(AT_RISK))] == ["FlagSlaAtRisk"]
    assert ticket.send(flag_at_risk(ticket.id, AT_RISK)).status == "applied"


def test_withdrawing_at_the_due_instant_cancels_rather_than_breaches():
    ticket = opened(plan="basic", severity="C", at=OPENED)

    outcome = ticket.send(withdraw(ticket.id, DUE))

    assert not any(e.type == "SlaBreached" for e in outcome.events)
    assert ticket.metric().state is MetricState.CANCELLED
