"""Closing a month (SPEC 6 and 7): once, only after it ended, only from the sources the policy names."""

from __future__ import annotations

from uuid import uuid4

import pytest
from pydantic import ValidationError

from consumers.records import Record, validate
from domain.commands import CloseMonth, month_stream_id, parse_command
from domain.events import MonthClosed
from tests.unit.builders import at, close_month, new_desk


def test_a_month_is_closed_on_a_stream_of_its_own():
    desk = new_desk()
    outcome = desk.handle(close_month("2026-03", "2026-04-02T09:00+02:00"))
    assert outcome.status == "applied", outcome.reason
    (event,) = outcome.events
    assert isinstance(event, MonthClosed)
    assert (event.month, event.closed_at, event.actor) == ("2026-03", at("2026-04-02T09:00+02:00"), "agent.test")
    assert event.originator_id == month_stream_id("2026-03") != month_stream_id("2026-04")
    assert list(desk.events_of(month_stream_id("2026-03"))) == [event]


def test_a_repeat_or_a_second_closing_changes_nothing():
    desk = new_desk()
    first = close_month("2026-03", "2026-04-02T09:00+02:00")
    assert desk.handle(first).status == "applied"
    assert desk.handle(first).status == "unchanged"
    by_watchdog = close_month("2026-03", "2026-04-05T00:00+02:00", source="nettask-watchdog")
    assert desk.handle(by_watchdog).status == "unchanged"
    assert len(list(desk.events_of(month_stream_id("2026-03")))) == 1


def test_a_reused_command_id_for_another_closing_is_a_conflicting_repeat():
    desk, command_id = new_desk(), uuid4()
    desk.handle(close_month("2026-03", "2026-04-02T09:00+02:00", command_id=command_id))
    outcome = desk.handle(close_month("2026-03", "2026-04-03T09:00+02:00", command_id=command_id))
    assert (outcome.status, outcome.kind) == ("refused", "conflicting-repeat")


@pytest.mark.parametrize(
    ("when", "status"),
    [
        ("2026-03-31T23:59:59+02:00", "refused"),  # the month's last second, Berlin summer time
        ("2026-03-31T21:59:59Z", "refused"),
        ("2026-03-15T12:00+01:00", "refused"),
        ("2026-02-28T12:00+01:00", "refused"),  # before the month even began
        ("2026-03-31T22:00:00Z", "applied"),  # = 2026-04-01T00:00 Berlin
        ("2026-04-01T00:00+02:00", "applied"),
    ],
)
def test_a_month_not_yet_ended_is_not_closed(when, status):
    outcome = new_desk().handle(close_month("2026-03", when))
    assert outcome.status == status, outcome.reason
    if status == "refused":
        assert outcome.kind == "refused"
        assert "month 2026-03 has not ended" in outcome.reason
        assert "2026-04-01T00:00:00+02:00" in outcome.reason


@pytest.mark.parametrize("source", ["portal", "nettask-intake", None])
def test_closing_from_a_source_the_policy_does_not_name_is_forbidden(source):
    outcome = new_desk().handle(close_month("2026-03", "2026-04-02T09:00+02:00", source=source))
    assert (outcome.status, outcome.kind) == ("refused", "forbidden")
    assert "CloseMonth is accepted only from nettask-operator, nettask-watchdog" in outcome.reason


def test_a_forbidden_closing_is_refused_even_when_the_month_is_closed_already():
    desk = new_desk()
    desk.handle(close_month("2026-03", "2026-04-02T09:00+02:00"))
    outcome = desk.handle(close_month("2026-03", "2026-04-03T09:00+02:00", source="portal"))
    assert outcome.kind == "forbidden"


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "2026-3", "0000-01", "26-03", "2026-03-01", ""])
def test_a_closing_names_a_real_month(month):
    data = {
        "type": "CloseMonth",
        "command_id": str(uuid4()),
        "occurred_at": "2026-04-02T09:00:00+02:00",
        "actor": "operator.jane",
        "source": "nettask-operator",
        "month": month,
    }
    with pytest.raises(ValidationError):
        parse_command(data)


def test_a_closing_travels_keyed_by_its_month():
    command = close_month("2026-03", "2026-04-02T09:00+02:00")
    assert isinstance(command, CloseMonth)
    assert (command.key, command.stream_id) == ("2026-03", month_stream_id("2026-03"))


def test_the_intake_takes_a_closing_only_under_its_month_key():
    command = close_month("2026-03", "2026-04-02T09:00+02:00")
    value = command.model_dump_json().encode()
    assert validate(Record("t", 0, 0, b"2026-03", value), 65536) == command
    letter = validate(Record("t", 0, 1, b"cust-1", value), 65536)
    assert (letter.kind, letter.reason) == ("wrong-key", "the key must be 2026-03 (the month), not cust-1")
