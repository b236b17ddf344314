"""Commands a careless or hostile publisher sends: instants out of range, numbers for times, reused ids, forbidden
sources. Each is refused with a reason; none raises anything but a validation or domain error."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from pydantic import ValidationError

from domain.commands import InstantRange, parse_command
from domain.errors import Forbidden
from domain.sla import MetricState
from domain.validation import validation_problems
from domain.watch import WATCHDOG_SOURCE
from tests.unit.builders import opened, record_breach, respond, subscribe

RESPONSE = {"type": "RecordResponse", "command_id": str(uuid4()), "actor": "agent.jane", "ticket_id": str(uuid4())}


@pytest.mark.parametrize(
    "instant",
    [
        "9999-12-31T23:00:00-05:00",  # overflowed the UTC conversion
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59Z",
        "1999-12-31T23:59:59Z",
        "2100-01-01T00:00:01Z",
    ],
)
def test_an_instant_outside_the_accepted_range_is_invalid_input(instant):
    with pytest.raises(ValidationError) as raised:
        parse_command(json.dumps({**RESPONSE, "occurred_at": instant}))

    assert "occurred_at: must lie between 2000-01-01" in validation_problems(raised.value)


@pytest.mark.parametrize(
    "instant", [1772442000, 1772442000.5, "1772442000", "2026-03-02T10:00:00", "2026-03-02", "next monday", None, True]
)
def test_an_instant_must_be_rfc_3339_text_with_an_offset(instant):
    with pytest.raises(ValidationError) as raised:
        parse_command(json.dumps({**RESPONSE, "occurred_at": instant}))

    assert "occurred_at" in validation_problems(raised.value)


def test_the_accepted_range_is_a_setting_of_the_caller():
    narrow = InstantRange(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))
    value = json.dumps({**RESPONSE, "occurred_at": "2025-06-01T10:00:00+02:00"})

    assert parse_command(value).occurred_at.year == 2025
    with pytest.raises(ValidationError):
        parse_command(value, narrow)


def test_plan_effective_instants_are_checked_the_same_way():
    plan = subscribe("cust-1", "standard").model_dump(mode="json")
    with pytest.raises(ValidationError) as raised:
        parse_command({**plan, "effective_from": "9999-12-31T20:00:00-05:00"})

    assert "effective_from" in validation_problems(raised.value)


def test_event_ids_stay_unique_when_a_command_id_is_reused_on_another_ticket():
    first, second = opened(), opened()
    reused = uuid4()

    one = first.send(respond(first.id, "2026-03-02T10:30+01:00", command_id=reused))
    other = second.send(respond(second.id, "2026-03-02T10:30+01:00", command_id=reused))

    assert (one.status, other.status) == ("applied", "applied")
    assert not {e.event_id for e in one.events} & {e.event_id for e in other.events}


def test_a_watchdog_command_from_another_source_is_forbidden():
    ticket = opened()
    forged = record_breach(ticket.id, "2026-03-02T19:00+01:00").model_copy(update={"source": "crm"})

    outcome = ticket.send(forged)

    assert (outcome.status, outcome.kind) == ("refused", Forbidden.kind)
    assert "accepted only from nettask-watchdog, not from source 'crm'" in outcome.reason
    assert ticket.metric().state is not MetricState.BREACHED


def test_a_watchdog_command_without_a_source_is_forbidden_even_for_a_ticket_never_opened():
    ticket = opened()
    anonymous = record_breach(uuid4(), "2026-03-02T19:00+01:00").model_copy(update={"source": None})

    outcome = ticket.send(anonymous)

    assert (outcome.kind, outcome.reason.endswith("not from no source")) == (Forbidden.kind, True)


def test_a_watchdog_command_from_the_watchdog_is_applied():
    ticket = opened()

    outcome = ticket.send(record_breach(ticket.id, "2026-03-02T19:00+01:00"))

    assert outcome.status == "applied", outcome.reason
    assert outcome.command.source == WATCHDOG_SOURCE
