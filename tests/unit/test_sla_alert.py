"""The alert transform (event + ticket facts → alert) and the PagerDuty event made from it, on real domain events."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from consumers.alert_webhook import pagerduty_event, summary
from consumers.sla_alert import AlertKind, SlaAlert, TicketFacts, alert_for, alert_id, facts_after
from domain.events import SlaAtRisk, SlaBreached
from tests.unit.builders import escalate, flag_at_risk, opened, record_breach, respond


def alerts_of(events) -> list[SlaAlert]:
    """What the alerts consumer makes of a ticket's events, in order."""
    facts, alerts = TicketFacts(), []
    for event in events:
        if isinstance(event, SlaBreached | SlaAtRisk):
            alerts.append(alert_for(event, facts))
        facts = facts_after(facts, event)
    return alerts


def test_a_breach_noticed_late_carries_the_ticket_facts_and_how_late_it_was_noticed():
    story = opened(plan="standard", severity="C")
    due = story.due()
    story.send(record_breach(story.id, due + timedelta(minutes=90, seconds=30)))

    (alert,) = alerts_of(story.events())

    opening = story.events()[0]
    assert alert.kind is AlertKind.BREACH
    assert (alert.ticket_id, alert.customer_id) == (story.id, story.customer_id)
    assert (alert.reference, alert.plan, alert.severity) == (opening.reference, "standard", "C")
    assert (alert.metric, alert.due_at, alert.breached_at) == ("first_response", due, due)
    assert alert.minutes_late == 90 and alert.minutes_left is None and alert.at_risk_at is None
    assert alert.policy_version == opening.policy_version
    assert alert.alert_id == alert_id(story.events()[-1].event_id)


def test_the_severity_is_the_current_one_after_an_escalation():
    story = opened(plan="standard", severity="C")
    story.send(escalate(story.id, "2026-03-02T10:05+01:00", to="A"))
    story.send(record_breach(story.id, story.due() + timedelta(minutes=1)))

    (alert,) = alerts_of(story.events())

    assert alert.severity == "A"


def test_an_at_risk_alert_says_how_many_minutes_are_left():
    story = opened(plan="standard", severity="C")
    metric = story.metric()
    story.send(flag_at_risk(story.id, metric.at_risk_at))

    (alert,) = alerts_of(story.events())

    assert alert.kind is AlertKind.AT_RISK
    assert alert.at_risk_at == metric.at_risk_at and alert.breached_at is None and alert.minutes_late is None
    assert alert.minutes_left == int((metric.due_at - metric.at_risk_at).total_seconds() // 60)
    assert alert.policy_version == story.events()[0].policy_version


def test_no_alert_for_a_ticket_answered_in_time():
    story = opened()
    story.send(respond(story.id, "2026-03-02T10:30+01:00"))
    assert alerts_of(story.events()) == []


def test_a_breach_whose_opening_was_never_seen_still_alerts_with_what_the_event_says():
    story = opened()
    story.send(record_breach(story.id, story.due() + timedelta(minutes=5)))
    breach = story.events()[-1]

    alert = alert_for(breach, TicketFacts())

    assert (alert.reference, alert.plan, alert.severity) == (None, None, None)
    assert alert.customer_id == story.customer_id and alert.policy_version == breach.policy_version


def test_the_alert_id_is_the_same_for_the_same_event_and_differs_between_events():
    event_id = uuid4()
    assert alert_id(event_id) == alert_id(event_id) != alert_id(uuid4())


def test_the_alert_json_round_trips():
    story = opened()
    story.send(record_breach(story.id, story.due() + timedelta(minutes=5)))
    (alert,) = alerts_of(story.events())
    assert SlaAlert.model_validate_json(alert.model_dump_json()) == alert


# --- the PagerDuty Events API v2 payload -----------------------------------------------------------------


@pytest.mark.parametrize(("severity", "expected"), [("A", "critical"), ("B", "error"), ("C", "warning")])
def test_pagerduty_severity_follows_the_ticket_severity(severity, expected):
    story = opened(severity=severity)
    story.send(record_breach(story.id, story.due() + timedelta(minutes=5)))
    (alert,) = alerts_of(story.events())

    assert pagerduty_event(alert, "key")["payload"]["severity"] == expected


def test_pagerduty_event_is_a_trigger_deduplicated_by_the_alert_id():
    story = opened(severity="B")
    story.send(record_breach(story.id, story.due() + timedelta(minutes=5)))
    (alert,) = alerts_of(story.events())

    event = pagerduty_event(alert, "R0UT1NGKEY")

    assert event["routing_key"] == "R0UT1NGKEY"
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == str(alert.alert_id)
    payload = event["payload"]
    assert {"summary", "source", "severity", "timestamp", "custom_details"} <= payload.keys()
    assert payload["summary"] == summary(alert) and len(payload["summary"]) <= 1024
    assert alert.reference in payload["summary"] and "first_response" in payload["summary"]
    assert payload["timestamp"] == alert.noticed_at.isoformat()
    assert payload["custom_details"] == alert.model_dump(mode="json")


def test_an_alert_without_a_known_severity_is_an_error_for_pagerduty():
    story = opened()
    story.send(record_breach(story.id, story.due() + timedelta(minutes=5)))
    alert = alert_for(story.events()[-1], TicketFacts())
    assert pagerduty_event(alert, "key")["payload"]["severity"] == "error"
