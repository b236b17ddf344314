"""The command contract: what a publishing service must send, and what validation refuses."""

from __future__ import annotations

import json
from uuid import UUID, uuid4, uuid5

import pytest
from pydantic import ValidationError

from domain import commands as cmd
from domain.commands import TICKET_NAMESPACE, parse_command, ticket_id_for

OPEN = {
    "type": "OpenTicket",
    "command_id": "8a0c3f2e-3c57-4b0e-9d61-0f4d7a9b1c22",
    "occurred_at": "2026-03-02T10:00:00+01:00",
    "actor": "portal",
    "source": "portal",
    "reference": "T-1001",
    "customer_id": "cust-42",
    "department": "trouble",
    "severity": "C",
    "language": "en",
    "subject": "The web shop answers 503",
}
TICKET_ID = "1f6d2b10-94b2-4c3e-8f0a-5d7e6c4b3a21"


def with_(base: dict, **changes: object) -> dict:
    return {**base, **changes}


def test_open_ticket_derives_its_id_from_source_and_reference():
    command = parse_command(OPEN)

    assert command.ticket_id == uuid5(TICKET_NAMESPACE, "portal:T-1001")
    assert command.ticket_id == ticket_id_for("portal", "T-1001")
    assert command.key == str(command.ticket_id)


def test_the_same_reference_from_another_source_is_another_ticket():
    assert parse_command(with_(OPEN, source="mailgate")).ticket_id != parse_command(OPEN).ticket_id


def test_an_explicit_ticket_id_equal_to_the_derived_one_is_accepted():
    derived = str(ticket_id_for("portal", "T-1001"))

    assert parse_command(with_(OPEN, ticket_id=derived)).ticket_id == UUID(derived)


def test_an_explicit_ticket_id_that_is_not_the_derived_one_fails_validation():
    with pytest.raises(ValidationError, match="uuid5"):
        parse_command(with_(OPEN, ticket_id=str(uuid4())))


def test_open_ticket_defaults_to_the_ticket_channel():
    assert parse_command(OPEN).channel == "ticket"


@pytest.mark.parametrize(
    ("why", "data"),
    [
        ("naive occurred_at", with_(OPEN, occurred_at="2026-03-02T10:00:00")),
        ("unknown type", with_(OPEN, type="ReassignTicket")),
        ("no type", {k: v for k, v in OPEN.items() if k != "type"}),
        ("extra field", with_(OPEN, priority="high")),
        ("unknown severity", with_(OPEN, severity="D")),
        ("unknown channel", with_(OPEN, channel="email")),
        ("missing customer", {k: v for k, v in OPEN.items() if k != "customer_id"}),
        ("empty subject", with_(OPEN, subject="")),
        ("command id not a uuid", with_(OPEN, command_id="42")),
        ("actor with spaces", with_(OPEN, actor="an agent")),
    ],
)
def test_invalid_open_ticket_commands_fail_validation(why, data):
    with pytest.raises(ValidationError):
        parse_command(data)


def ticket_command(type_: str, **fields: object) -> dict:
    return {
        "type": type_,
        "command_id": str(uuid4()),
        "occurred_at": "2026-03-02T11:00:00+01:00",
        "actor": "agent.kim",
        "ticket_id": TICKET_ID,
        **fields,
    }


@pytest.mark.parametrize(
    ("data", "expected_type"),
    [
        (ticket_command("EscalateTicket", to_severity="A"), cmd.EscalateTicket),
        (ticket_command("EscalateTicket", escalation_phone=True), cmd.EscalateTicket),
        (ticket_command("ChangeSeverity", to_severity="C", reason="workaround found"), cmd.ChangeSeverity),
        (ticket_command("RecordResponse"), cmd.RecordResponse),
        (ticket_command("RecordCustomerReply"), cmd.RecordCustomerReply),
        (ticket_command("AwaitCustomer", reason="logs requested"), cmd.AwaitCustomer),
        (ticket_command("ResumeTicket"), cmd.ResumeTicket),
        (ticket_command("RequestCallback"), cmd.RequestCallback),
        (ticket_command("CompleteCallback"), cmd.CompleteCallback),
        (ticket_command("ResolveTicket", resolution="pool restarted"), cmd.ResolveTicket),
        (ticket_command("ReopenTicket", reason="503s are back"), cmd.ReopenTicket),
        (ticket_command("CloseTicket"), cmd.CloseTicket),
        (ticket_command("WithdrawTicket", reason="fixed it ourselves"), cmd.WithdrawTicket),
        (ticket_command("RecordSlaBreach", metric="first_response"), cmd.RecordSlaBreach),
        (ticket_command("FlagSlaAtRisk", metric="next_response:1"), cmd.FlagSlaAtRisk),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_every_ticket_command_parses_from_json_bytes(data, expected_type):
    command = parse_command(json.dumps(data).encode())

    assert type(command) is expected_type
    assert command.ticket_id == UUID(TICKET_ID)
    assert command.key == TICKET_ID


def test_parse_command_takes_bytes_text_and_dicts_alike():
    text = json.dumps(OPEN)

    assert parse_command(text.encode()) == parse_command(text) == parse_command(OPEN)


def test_occurred_at_is_the_same_instant_stored_in_utc():
    command = parse_command(json.dumps(OPEN).encode())

    assert command.occurred_at.isoformat() == "2026-03-02T09:00:00+00:00"  # 10:00 Berlin winter time


@pytest.mark.parametrize(
    ("why", "data"),
    [
        ("escalation with neither severity nor phone", ticket_command("EscalateTicket")),
        ("lowering without a reason", ticket_command("ChangeSeverity", to_severity="C")),
        ("lowering with an empty reason", ticket_command("ChangeSeverity", to_severity="C", reason="")),
        ("waiting without a reason", ticket_command("AwaitCustomer")),
        ("resolution missing", ticket_command("ResolveTicket")),
        ("withdrawal without a reason", ticket_command("WithdrawTicket", reason="")),
        ("watchdog without a metric", ticket_command("RecordSlaBreach")),
        ("ticket id not a uuid", ticket_command("RecordResponse", ticket_id="T-1001")),
        ("naive time", ticket_command("RecordResponse", occurred_at="2026-03-02T11:00:00")),
        ("extra field", ticket_command("RecordResponse", body="Hello")),
    ],
)
def test_invalid_ticket_commands_fail_validation(why, data):
    with pytest.raises(ValidationError):
        parse_command(json.dumps(data).encode())


def test_subscribe_plan_is_keyed_by_customer_and_needs_an_aware_start():
    data = {
        "type": "SubscribePlan",
        "command_id": str(uuid4()),
        "occurred_at": "2026-03-01T09:00:00+01:00",
        "actor": "billing",
        "customer_id": "cust-42",
        "plan": "professional",
        "effective_from": "2026-03-02T12:00:00+01:00",
    }

    assert parse_command(json.dumps(data).encode()).key == "cust-42"
    with pytest.raises(ValidationError):
        parse_command(with_(data, effective_from="2026-03-02T12:00:00"))


def test_commands_are_immutable():
    command = parse_command(OPEN)

    with pytest.raises(ValidationError):
        command.severity = "A"
