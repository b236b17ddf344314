"""JSON Schemas of the command and event values and of the message headers, with the names they share."""

from __future__ import annotations

import json
from typing import Any

from pydantic.json_schema import models_json_schema

from consumers.alerts import ALERT_MESSAGE_TYPE
from consumers.sla_alert import SlaAlert
from domain.commands import COMMAND_ADAPTER, COMMAND_TYPES, SCHEMA_VERSION, TICKET_NAMESPACE
from domain.events import TICKET_EVENTS, DomainEvent, MonthClosed, PlanSubscribed
from infra import messages

Json = dict[str, Any]

COMMANDS_FILE = "commands.schema.json"
EVENTS_FILE = "events.schema.json"
ALERTS_FILE = "alerts.schema.json"
# A name for the schemas, not a download address: the files live next to each other in docs/contract.
BASE_URI = "https://nettask.example/contract/"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
PUBLIC_EVENTS: tuple[type[DomainEvent], ...] = (*TICKET_EVENTS, PlanSubscribed, MonthClosed)
# The property whose value is the Kafka key, for the commands and events not keyed by their ticket.
KEY_PROPERTIES = {
    "SubscribePlan": "customer_id",
    "PlanSubscribed": "customer_id",
    "CloseMonth": "month",
    "MonthClosed": "month",
}
COMMAND_NAMES = tuple(command.__name__ for command in COMMAND_TYPES)
EVENT_NAMES = tuple(event.__name__ for event in PUBLIC_EVENTS)
# "format": "date-time" only annotates in draft 2020-12; a time without an offset would be ambiguous.
INSTANT_PATTERN = r"(Z|z|[+-][0-9]{2}:[0-9]{2})$"
INSTANT_NOTE = "An RFC 3339 instant with a UTC offset (Z or +hh:mm); stored in UTC."


def commands_schema() -> Json:
    """The command union as JSON Schema, one definition per command, discriminated by `type`."""
    schema = COMMAND_ADAPTER.json_schema(ref_template="#/$defs/{model}")
    for name in COMMAND_NAMES:
        definition = schema["$defs"][name]
        # `type` has a default in Python, but a message without it cannot be routed: it is required on the wire.
        definition["required"] = ["type", *definition["required"]]
        definition["x-kafka-key"] = KEY_PROPERTIES.get(name, "ticket_id")
    schema["$defs"]["OpenTicket"]["properties"]["ticket_id"]["description"] = (
        f'Optional; when given, it must equal uuid5({TICKET_NAMESPACE}, "<source>:<reference>").'
    )
    _mark_instants(schema)
    return {
        "$schema": DIALECT,
        "$id": BASE_URI + COMMANDS_FILE,
        "title": "NetTask ticket commands",
        "description": (
            f"The JSON value of a message on the commands topic, schema version {SCHEMA_VERSION}. "
            f"`type` names the command; the Kafka key is the property named by x-kafka-key."
        ),
        **schema,
    }


def events_schema() -> Json:
    """The public events as JSON Schema: an anyOf over every event, each marked with its message-type."""
    _, schema = models_json_schema(
        [(event, "serialization") for event in PUBLIC_EVENTS], ref_template="#/$defs/{model}"
    )
    for event in PUBLIC_EVENTS:
        definition = schema["$defs"][event.__name__]
        definition["x-message-type"] = event.__name__
        note = f"The `{messages.MESSAGE_TYPE}` header is `{event.__name__}`."
        definition["description"] = f"{definition['description']} {note}" if "description" in definition else note
    _mark_instants(schema)
    return {
        "$schema": DIALECT,
        "$id": BASE_URI + EVENTS_FILE,
        "title": "NetTask ticket events",
        "description": _events_description(_look_alikes(schema["$defs"])),
        # Not oneOf: look-alike events (same fields) would match two branches, and a oneOf would refuse them.
        "anyOf": [{"$ref": f"#/$defs/{name}"} for name in EVENT_NAMES],
        **schema,
    }


def alerts_schema() -> Json:
    """The SLA alert value as JSON Schema: one object, `kind` telling a breach from a risk."""
    _, schema = models_json_schema([(SlaAlert, "serialization")], ref_template="#/$defs/{model}")
    _mark_instants(schema)
    headers = "; ".join(f"`{name}`: {text}" for name, (text, _) in alert_header_fields().items())
    return {
        "$schema": DIALECT,
        "$id": BASE_URI + ALERTS_FILE,
        "title": "NetTask SLA alerts",
        "description": (
            "The JSON value of a message on the SLA alerts topic: one SLA breach or risk of one ticket, enriched "
            "with the ticket's reference, customer, plan and current severity. Written in Kafka transactions: "
            "read with isolation level read_committed. Each breach or risk has exactly one committed alert; its "
            f"`alert_id` is derived from the event, so a copy is recognisable. Headers, UTF-8 text: {headers}."
        ),
        "$ref": f"#/$defs/{SlaAlert.__name__}",
        **schema,
    }


def _look_alikes(definitions: Json) -> list[list[str]]:
    """Groups of events whose JSON has the very same fields: only the message-type header tells them apart."""
    groups: dict[str, list[str]] = {}
    for name in EVENT_NAMES:
        shape = json.dumps([definitions[name]["properties"], definitions[name]["required"]], sort_keys=True)
        groups.setdefault(shape, []).append(name)
    return [names for names in groups.values() if len(names) > 1]


def _events_description(look_alikes: list[list[str]]) -> str:
    headers = "; ".join(f"`{name}`: {text}" for name, (text, _) in event_header_fields().items())
    alike = ", ".join(" and ".join(names) for names in look_alikes) or "none"
    return (
        "The JSON value of a message on the events topic: a stored event exactly as recorded. The value has no "
        f"type field: the `{messages.MESSAGE_TYPE}` header names the event class (x-message-type of each "
        f"definition); a value may match more than one definition (same fields: {alike}), so read the header "
        f"first. Headers, UTF-8 text: {headers}."
    )


def _mark_instants(node: Any) -> None:
    """Give every date-time an offset pattern and a note, wherever it is nested."""
    if isinstance(node, dict):
        if node.get("format") == "date-time":
            node.setdefault("pattern", INSTANT_PATTERN)
            node.setdefault("description", INSTANT_NOTE)
        for child in node.values():
            _mark_instants(child)
    elif isinstance(node, list):
        for child in node:
            _mark_instants(child)


# --- headers --------------------------------------------------------------------------------------------------

UUID_TEXT: Json = {"type": "string", "format": "uuid"}
COUNT_TEXT: Json = {"type": "string", "pattern": "^[1-9][0-9]*$"}


def command_header_fields() -> dict[str, tuple[str, Json]]:
    return {
        messages.MESSAGE_TYPE: ("the command type, equal to the value's `type`", {"enum": list(COMMAND_NAMES)}),
        messages.SCHEMA: ("the schema version of the command contract", {"const": str(SCHEMA_VERSION)}),
        messages.MESSAGE_ID: ("the command id, equal to the value's `command_id`", UUID_TEXT),
    }


def event_header_fields() -> dict[str, tuple[str, Json]]:
    return {
        messages.MESSAGE_TYPE: ("the event class, e.g. `Opened`", {"enum": list(EVENT_NAMES)}),
        messages.SCHEMA: ("the schema version of that event class", COUNT_TEXT),
        messages.MESSAGE_ID: ("the event id (`event_id`), the same on a repeated delivery", UUID_TEXT),
        messages.STREAM_VERSION: ("the event's version in its stream (`originator_version`)", COUNT_TEXT),
        messages.NOTIFICATION_ID: ("the event's position in the event store's log", COUNT_TEXT),
    }


def alert_header_fields() -> dict[str, tuple[str, Json]]:
    return {
        messages.MESSAGE_TYPE: (f"always `{ALERT_MESSAGE_TYPE}`", {"const": ALERT_MESSAGE_TYPE}),
        messages.SCHEMA: ("the schema version of the alert", {"const": str(SlaAlert.schema_version)}),
        messages.MESSAGE_ID: ("the alert id (`alert_id`), the same on every copy of the alert", UUID_TEXT),
    }


# Only on some dead letters: those cut to fit the dead-letter topic.
OPTIONAL_HEADERS = frozenset({messages.DLQ_ORIGINAL_BYTES, messages.DLQ_ORIGINAL_HEADER_BYTES})
DEAD_LETTER_KINDS = (
    "empty", "oversized", "invalid-json", "unknown-type", "schema", "wrong-key", "invalid", "unreadable",
    "refused", "forbidden", "conflicting-repeat",
)  # fmt: skip


def dead_letter_header_fields() -> dict[str, tuple[str, Json]]:
    return {
        messages.DLQ_KIND: (
            "what went wrong: `empty`, `oversized` (the value, or the compressed batch it came in, is too large), "
            "`invalid-json`, `unknown-type`, `schema`, `wrong-key`, `invalid` (unreadable as a command for another "
            "reason), `unreadable` (the Kafka record itself could not be decoded; the dead letter then has no "
            "value); or, for a valid command: `refused` (the ticket's state or the policy does not allow it, or "
            "the plan or opening it needs did not arrive in time), `forbidden` (its source may not send this "
            "type), `conflicting-repeat` (its command id was used before for a different command)",
            {"enum": list(DEAD_LETTER_KINDS)},
        ),
        messages.DLQ_REASON: ("why, on one line: `field.path: message; ...` for an invalid command", {}),
        messages.DLQ_SOURCE: ("where the message was read from: `topic/partition/offset`", {}),
        messages.DLQ_ORIGINAL_BYTES: (
            "only when the value was cut to 256 KiB to fit the dead-letter topic: the original length in bytes",
            COUNT_TEXT,
        ),
        messages.DLQ_ORIGINAL_HEADER_BYTES: (
            "only when the original headers passed 256 KiB and only those that fit were kept: their total length in "
            "bytes",
            COUNT_TEXT,
        ),
        messages.DLQ_AT: ("when it was dead-lettered: an ISO 8601 instant with offset", {"format": "date-time"}),
    }


def _headers_schema(title: str, fields: dict[str, tuple[str, Json]], *, more_allowed: bool) -> Json:
    return {
        "title": title,
        "type": "object",
        "properties": {
            name: {"type": "string", "description": text[0].upper() + text[1:] + ".", **extra}
            for name, (text, extra) in fields.items()
        },
        "required": [name for name in fields if name not in OPTIONAL_HEADERS],
        "additionalProperties": more_allowed,
    }


def header_schemas() -> Json:
    """The headers of commands, events, dead letters and alerts; a dead letter keeps the original's headers too."""
    return {
        "CommandHeaders": _headers_schema("Command headers", command_header_fields(), more_allowed=True),
        "EventHeaders": _headers_schema("Event headers", event_header_fields(), more_allowed=True),
        "DeadLetterHeaders": _headers_schema("Dead-letter headers", dead_letter_header_fields(), more_allowed=True),
        "AlertHeaders": _headers_schema("SLA alert headers", alert_header_fields(), more_allowed=True),
    }
