"""SPEC section 5: every due time and breach explained: policy version, clock, start, pauses, closed hours skipped."""

from __future__ import annotations

import pytest

from domain.errors import DomainError
from domain.explain import explain_metric
from domain.policy import ClockKind
from domain.sla import MetricState
from tests.unit.builders import at, await_customer, escalate, opened, respond, resume, shipped_book


def test_a_business_hours_due_time_names_the_closed_hours_and_holidays_it_skipped():
    # Standard, C, English: 4 h. Thursday 16:00 before Easter: 2 h Thursday, then Good Friday, the weekend
    # and Easter Monday are closed, 2 h more on Tuesday: due Tuesday 10:00.
    story = opened(plan="standard", severity="C", language="en", at="2026-04-02T16:00+02:00")
    explanation = explain_metric(story.events(), "first_response", shipped_book())
    assert explanation.due_at == at("2026-04-07T10:00+02:00")
    assert (explanation.policy_version, explanation.clock, explanation.target_minutes) == (
        "2021-07-01",
        ClockKind.BUSINESS_HOURS,
        240,
    )
    assert explanation.started_at == at("2026-04-02T16:00+02:00")
    reasons = [skipped.reason for skipped in explanation.closed_time_skipped]
    assert reasons == ["holiday: Good Friday", "weekend", "holiday: Easter Monday"]
    assert explanation.closed_time_skipped[0].start == at("2026-04-02T18:00+02:00")
    assert explanation.closed_time_skipped[-1].end == at("2026-04-07T08:00+02:00")


def test_a_breach_explained_with_its_pause_and_the_escalation_that_shortened_it():
    story = opened(plan="standard", severity="C", language="en", at="2026-03-02T10:00+01:00")
    story.send(await_customer(story.id, "2026-03-02T11:00+01:00", reason="need the server name"))
    story.send(resume(story.id, "2026-03-02T15:00+01:00"))
    story.send(escalate(story.id, "2026-03-02T15:30+01:00", to="A"))
    story.send(respond(story.id, "2026-03-03T09:00+01:00"))

    explanation = explain_metric(story.events(), "first_response", shipped_book())

    # English A runs on business hours, 2 h: 1 h used before the pause, 1 h after resuming at 15:00.
    assert explanation.state is MetricState.BREACHED
    assert explanation.breached_at == explanation.due_at == at("2026-03-02T16:00+01:00")
    [pause] = explanation.pauses
    assert (pause.paused_at, pause.paused_because) == (at("2026-03-02T11:00+01:00"), "need the server name")
    assert pause.resumed_at == at("2026-03-02T15:00+01:00")
    [change] = explanation.target_changes
    assert change.change == "escalated C -> A"
    assert change.target_minutes == 120


def test_a_round_the_clock_due_time_skips_nothing():
    story = opened(plan="professional", severity="A", language="de", at="2026-03-07T03:00+01:00")
    explanation = explain_metric(story.events(), "first_response", shipped_book())
    assert explanation.clock is ClockKind.ROUND_THE_CLOCK
    assert explanation.due_at == at("2026-03-07T05:00+01:00")
    assert explanation.closed_time_skipped == ()


def test_explaining_a_metric_the_ticket_does_not_have_is_refused():
    story = opened()
    with pytest.raises(DomainError, match="next_response:1"):
        explain_metric(story.events(), "next_response:1", shipped_book())
