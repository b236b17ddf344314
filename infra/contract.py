"""The public contract as files: JSON Schemas of commands and events, an AsyncAPI document of the topics, a README."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid5

from pydantic import ValidationError
from pydantic.json_schema import models_json_schema

from domain.commands import (
    COMMAND_ADAPTER,
    COMMAND_TYPES,
    SCHEMA_VERSION,
    TICKET_NAMESPACE,
    Command,
    explain,
    parse_command,
    ticket_id_for,
)
from domain.events import TICKET_EVENTS, DomainEvent, PlanSubscribed
from infra import messages
from infra.settings import TopicSettings

Json = dict[str, Any]

COMMANDS_FILE = "commands.schema.json"
EVENTS_FILE = "events.schema.json"
ASYNCAPI_FILE = "asyncapi.json"
README_FILE = "README.md"
# A name for the schemas, not a download address: the files live next to each other in docs/contract.
BASE_URI = "https://nettask.example/contract/"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
KAFKA_BINDING_VERSION = "0.5.0"
PUBLIC_EVENTS: tuple[type[DomainEvent], ...] = (*TICKET_EVENTS, PlanSubscribed)
COMMAND_NAMES = tuple(command.__name__ for command in COMMAND_TYPES)
EVENT_NAMES = tuple(event.__name__ for event in PUBLIC_EVENTS)
# "format": "date-time" only annotates in draft 2020-12; a time without an offset would be ambiguous.
INSTANT_PATTERN = r"(Z|z|[+-][0-9]{2}:[0-9]{2})$"
INSTANT_NOTE = "An RFC 3339 instant with a UTC offset (Z or +hh:mm); stored in UTC."


def default_topics() -> TopicSettings:
    """The topic names of the settings' defaults: the contract never depends on this machine's environment."""
    return TopicSettings.model_construct()


def render_json(document: Json) -> str:
    """Deterministic JSON text: sorted keys, two-space indent, a trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def contract_files(topics: TopicSettings | None = None) -> dict[str, str]:
    """Every file of docs/contract by name, as the text to write."""
    topics = topics or default_topics()
    return {
        ASYNCAPI_FILE: render_json(asyncapi_document(topics)),
        COMMANDS_FILE: render_json(commands_schema()),
        EVENTS_FILE: render_json(events_schema()),
        README_FILE: readme(topics),
    }


# --- JSON Schemas ---------------------------------------------------------------------------------------------


def commands_schema() -> Json:
    """The command union as JSON Schema, one definition per command, discriminated by `type`."""
    schema = COMMAND_ADAPTER.json_schema(ref_template="#/$defs/{model}")
    for name in COMMAND_NAMES:
        definition = schema["$defs"][name]
        # `type` has a default in Python, but a message without it cannot be routed: it is required on the wire.
        definition["required"] = ["type", *definition["required"]]
        definition["x-kafka-key"] = "customer_id" if name == "SubscribePlan" else "ticket_id"
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


def _look_alikes(definitions: Json) -> list[list[str]]:
    """Groups of events whose JSON has the very same fields: only the message-type header tells them apart."""
    groups: dict[str, list[str]] = {}
    for name in EVENT_NAMES:
        shape = json.dumps([definitions[name]["properties"], definitions[name]["required"]], sort_keys=True)
        groups.setdefault(shape, []).append(name)
    return [names for names in groups.values() if len(names) > 1]


def _events_description(look_alikes: list[list[str]]) -> str:
    headers = "; ".join(f"`{name}`: {text}" for name, (text, _) in _event_header_fields().items())
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


def _command_header_fields() -> dict[str, tuple[str, Json]]:
    return {
        messages.MESSAGE_TYPE: ("the command type, equal to the value's `type`", {"enum": list(COMMAND_NAMES)}),
        messages.SCHEMA: ("the schema version of the command contract", {"const": str(SCHEMA_VERSION)}),
        messages.MESSAGE_ID: ("the command id, equal to the value's `command_id`", UUID_TEXT),
    }


def _event_header_fields() -> dict[str, tuple[str, Json]]:
    return {
        messages.MESSAGE_TYPE: ("the event class, e.g. `Opened`", {"enum": list(EVENT_NAMES)}),
        messages.SCHEMA: ("the schema version of that event class", COUNT_TEXT),
        messages.MESSAGE_ID: ("the event id (`event_id`), the same on a repeated delivery", UUID_TEXT),
        messages.STREAM_VERSION: ("the event's version in its stream (`originator_version`)", COUNT_TEXT),
        messages.NOTIFICATION_ID: ("the event's position in the event store's log", COUNT_TEXT),
    }


def _dead_letter_header_fields() -> dict[str, tuple[str, Json]]:
    return {
        messages.DLQ_KIND: (
            "what went wrong: `empty`, `oversized`, `invalid-json`, `unknown-type`, `schema`, `wrong-key` (an "
            "invalid message), or `refused` (a valid command the engine refused)",
            {"enum": ["empty", "oversized", "invalid-json", "unknown-type", "schema", "wrong-key", "refused"]},
        ),
        messages.DLQ_REASON: ("why, on one line: `field.path: message; ...` for an invalid command", {}),
        messages.DLQ_SOURCE: ("where the message was read from: `topic/partition/offset`", {}),
        messages.DLQ_ORIGINAL_BYTES: (
            "only when the value was cut to 256 KiB to fit the dead-letter topic: the original length in bytes",
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
        "required": list(fields),
        "additionalProperties": more_allowed,
    }


def header_schemas() -> Json:
    """The headers of commands, events and dead letters; a dead letter keeps the original's headers too."""
    return {
        "CommandHeaders": _headers_schema("Command headers", _command_header_fields(), more_allowed=True),
        "EventHeaders": _headers_schema("Event headers", _event_header_fields(), more_allowed=True),
        "DeadLetterHeaders": _headers_schema("Dead-letter headers", _dead_letter_header_fields(), more_allowed=True),
    }


# --- examples: real commands, so they are valid by construction ----------------------------------------------

EXAMPLE_NAMESPACE = UUID("3b9d7c1e-5a2f-4e60-8b14-c0d9e8f7a6b5")
EXAMPLE_SOURCE, EXAMPLE_REFERENCE = "portal", "T-1001"
EXAMPLE_ACTORS = {
    "OpenTicket": "portal",
    "SubscribePlan": "billing",
    "RecordSlaBreach": "watchdog",
    "FlagSlaAtRisk": "watchdog",
}
EXAMPLE_FIELDS: dict[str, Json] = {
    "OpenTicket": {
        "source": EXAMPLE_SOURCE, "reference": EXAMPLE_REFERENCE, "customer_id": "cust-42", "department": "trouble",
        "channel": "ticket", "severity": "C", "language": "en", "subject": "The web shop answers 503",
    },
    "EscalateTicket": {"to_severity": "B", "escalation_phone": False},
    "ChangeSeverity": {"to_severity": "C", "reason": "only the test shop is affected"},
    "RecordResponse": {},
    "RecordCustomerReply": {},
    "AwaitCustomer": {"reason": "waiting for the customer's server logs"},
    "ResumeTicket": {"reason": "logs received"},
    "RequestCallback": {"note": "call back after 14:00"},
    "CompleteCallback": {},
    "ResolveTicket": {"resolution": "restarted the PHP workers"},
    "ReopenTicket": {"reason": "the 503 came back"},
    "CloseTicket": {},
    "WithdrawTicket": {"reason": "opened by mistake"},
    "RecordSlaBreach": {"metric": "first_response"},
    "FlagSlaAtRisk": {"metric": "first_response"},
    "SubscribePlan": {"customer_id": "cust-42", "plan": "standard", "effective_from": "2026-01-01T00:00:00+01:00"},
}  # fmt: skip


def example_commands() -> tuple[Command, ...]:
    """One command of every type, in union order; validated by the real models."""
    return tuple(parse_command(_example_data(name, minute)) for minute, name in enumerate(COMMAND_NAMES))


def _example_data(name: str, minute: int) -> Json:
    data: Json = {
        "type": name,
        "command_id": str(uuid5(EXAMPLE_NAMESPACE, name)),
        "occurred_at": f"2026-03-02T10:{minute:02d}:00+01:00",
        "actor": EXAMPLE_ACTORS.get(name, "agent.jane"),
    }
    if name not in ("OpenTicket", "SubscribePlan"):
        data["ticket_id"] = str(ticket_id_for(EXAMPLE_SOURCE, EXAMPLE_REFERENCE))
    return {**data, **EXAMPLE_FIELDS[name]}


def example_value(command: Command) -> Json:
    """A command's JSON as published, `type` first for the reader."""
    value = command.model_dump(mode="json")
    return {"type": value.pop("type"), **value}


def example_headers(command: Command) -> dict[str, str]:
    return {name: value.decode() for name, value in messages.command_headers(command)}


# --- AsyncAPI -------------------------------------------------------------------------------------------------


def asyncapi_document(topics: TopicSettings) -> Json:
    """AsyncAPI 3.0.0, from the side of another service: it sends commands and receives the rest."""
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "NetTask ticket lifecycle engine",
            "version": str(SCHEMA_VERSION),
            "description": "What other services send to and receive from the engine over Kafka. See README.md.",
        },
        "defaultContentType": "application/json",
        "channels": _channels(topics),
        "operations": _operations(),
        "components": {"messages": _messages(), "schemas": header_schemas()},
    }


CHANNELS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # channel id: (TopicSettings field, description, messages)
    "commands": ("commands", "Commands for the engine, keyed by ticket id (customer id for plans).", COMMAND_NAMES),
    "commandsDeadLetters": (
        "commands_dlq",
        "Messages of the commands topic that were invalid or refused, with the reason in headers.",
        ("DeadLetter",),
    ),
    "events": ("events", "Every stored event, in stream order per key.", EVENT_NAMES),
    "slaAlerts": ("sla_alerts", "SLA breaches and risks; message defined by a later release.", ("SlaAlert",)),
}  # fmt: skip
OPERATIONS: dict[str, tuple[str, str, str]] = {
    "sendCommand": ("send", "commands", "Publish a command."),
    "receiveEvent": ("receive", "events", "Follow what happened to tickets and customers."),
    "receiveDeadLetter": ("receive", "commandsDeadLetters", "Find out why a command was not applied."),
    "receiveSlaAlert": ("receive", "slaAlerts", "Be told of SLA breaches and risks."),
}


def _channels(topics: TopicSettings) -> Json:
    return {
        channel: {
            "address": getattr(topics, field),
            "description": description,
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
        }
        for channel, (field, description, names) in CHANNELS.items()
    }


def _operations() -> Json:
    return {
        operation: {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": summary,
            "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in CHANNELS[channel][2]],
        }
        for operation, (action, channel, summary) in OPERATIONS.items()
    }


def _messages() -> Json:
    examples = {type(command).__name__: command for command in example_commands()}
    return {
        **{name: _command_message(command) for name, command in examples.items()},
        **{event.__name__: _event_message(event) for event in PUBLIC_EVENTS},
        "DeadLetter": _dead_letter_message(),
        "SlaAlert": _sla_alert_message(),
    }


def _key(description: str, **schema: Any) -> Json:
    return {
        "kafka": {
            "key": {"type": "string", "description": description, **schema},
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }


def _typed_headers(schema: str, message_type: str) -> Json:
    marker = {"properties": {messages.MESSAGE_TYPE: {"const": message_type}}}
    return {"type": "object", "allOf": [{"$ref": f"#/components/schemas/{schema}"}, marker]}


def _command_message(command: Command) -> Json:
    name = type(command).__name__
    customer = name == "SubscribePlan"
    return {
        "name": name,
        "title": name,
        "summary": type(command).__doc__ or f"The {name} command.",
        "payload": {"$ref": f"{COMMANDS_FILE}#/$defs/{name}"},
        "headers": _typed_headers("CommandHeaders", name),
        "bindings": _key("The customer id." if customer else "The ticket id.", **({} if customer else UUID_TEXT)),
        "examples": [{"name": name, "headers": example_headers(command), "payload": example_value(command)}],
    }


def _event_message(event: type[DomainEvent]) -> Json:
    name = event.__name__
    plan = event is PlanSubscribed
    return {
        "name": name,
        "title": name,
        "summary": f"The {name} event; the {messages.MESSAGE_TYPE} header names it.",
        "payload": {"$ref": f"{EVENTS_FILE}#/$defs/{name}"},
        "headers": _typed_headers("EventHeaders", name),
        "bindings": _key("The customer id." if plan else "The ticket id.", **({} if plan else UUID_TEXT)),
    }


def _dead_letter_message() -> Json:
    return {
        "name": "DeadLetter",
        "title": "Dead letter",
        "summary": "The original message, key and value byte for byte (a value over 256 KiB cut to that length), "
        "its headers kept and dlq-* headers added.",
        "contentType": "application/octet-stream",
        "payload": {"description": "The original value, unchanged; it may not be JSON at all."},
        "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
        "bindings": _key("The original key: the ticket id, the customer id, or none."),
    }


def _sla_alert_message() -> Json:
    return {
        "name": "SlaAlert",
        "title": "SLA alert (placeholder)",
        "summary": "Defined by a later release: no model exists yet, so nothing about its payload is promised.",
        "payload": {"description": "Defined by a later release."},
        "bindings": _key("The ticket id.", **UUID_TEXT),
    }


# --- README ---------------------------------------------------------------------------------------------------


def readme(topics: TopicSettings) -> str:
    """How another service publishes a command, in any language, with one example per command type."""
    return "\n".join([_readme_intro(topics), _readme_publish(topics), _readme_dlq(topics), _readme_examples()])


def _readme_intro(topics: TopicSettings) -> str:
    return f"""# NetTask command and event contract

Generated by `nettask schema` (`make schema`) from the pydantic models in `domain/`; do not edit by hand.
`nettask schema --check` (and the unit tests) fail when a file here is stale.

| file | what it is |
|---|---|
| `{COMMANDS_FILE}` | JSON Schema (draft 2020-12) of the command value: a `oneOf` discriminated on `type` |
| `{EVENTS_FILE}` | JSON Schema of the event value: an `anyOf` over every public event; `x-message-type` names each |
| `{ASYNCAPI_FILE}` | AsyncAPI 3.0.0: the four topics as channels, their messages, headers, keys and examples |

The AsyncAPI document is JSON (every JSON document is also YAML 1.2, so YAML tools read it too); its payloads
refer to the schema files next to it. Topic names below are the defaults; each is a setting of the engine
(`NETTASK_TOPIC_COMMANDS`, `NETTASK_TOPIC_COMMANDS_DLQ`, `NETTASK_TOPIC_EVENTS`, `NETTASK_TOPIC_SLA_ALERTS`).

| topic | key | you |
|---|---|---|
| `{topics.commands}` | ticket id (customer id for `SubscribePlan`) | send commands |
| `{topics.commands_dlq}` | the original key | read why a command was not applied |
| `{topics.events}` | ticket id (customer id for `PlanSubscribed`) | read what happened |
| `{topics.sla_alerts}` | ticket id | read SLA alerts (message defined by a later release) |
"""


def _readme_publish(topics: TopicSettings) -> str:
    example = ticket_id_for(EXAMPLE_SOURCE, EXAMPLE_REFERENCE)
    headers = "\n".join(f"| `{name}` | {text} |" for name, (text, _) in _command_header_fields().items())
    return f"""## Publishing a command

One Kafka message per command on `{topics.commands}`:

- **value**: the command as UTF-8 JSON, valid against `{COMMANDS_FILE}`. `type` names the command; unknown
  fields are refused.
- **key**: the ticket id as text (a lowercase UUID with hyphens); for `SubscribePlan`, the customer id. All
  commands of one ticket then share a partition and are applied in the order you sent them.
- **headers** (UTF-8 text; the engine reads only the value, the headers are for tracing and tooling):

| header | value |
|---|---|
{headers}

**Ticket ids** are derived, never invented: `uuid5(TICKET_NAMESPACE, "<source>:<reference>")` (RFC 9562 name-based
UUID, SHA-1), where `source` names your system and `reference` is your own id for the ticket, and

    TICKET_NAMESPACE = {TICKET_NAMESPACE}

For example, source `{EXAMPLE_SOURCE}` and reference `{EXAMPLE_REFERENCE}` give `{example}`. Python:
`uuid.uuid5(uuid.UUID("{TICKET_NAMESPACE}"), "{EXAMPLE_SOURCE}:{EXAMPLE_REFERENCE}")`; Go (google/uuid):
`uuid.NewSHA1(namespace, []byte(name))`; JavaScript (uuid): `v5(name, namespace)`. `OpenTicket` may leave out
`ticket_id`; if it is given, it must be the derived one. Every later command names the ticket by that id.

**Times** (`occurred_at`, `effective_from`) are RFC 3339 instants *with* an offset, `2026-03-02T10:00:00+01:00` or
`2026-03-02T09:00:00Z`; a time without one is refused. `occurred_at` is when the thing happened at your end:
the engine never reads a clock, so deadlines are computed from it.

**`command_id`** is a UUID you choose once per command (a random UUIDv4) and keep when you retry. A command id
the engine has seen before changes nothing, so publishing the same command twice is safe. Publish with
`acks=all` and an idempotent producer. Use the murmur2 partitioner of the Java client (kafka-python's default;
in librdkafka-based clients set `partitioner=murmur2_random`), so one ticket's commands share a partition
whichever client sent them. Python services can use `producers.client.CommandPublisher`, which does all of this
and validates before it sends.
"""


def _readme_dlq(topics: TopicSettings) -> str:
    headers = "\n".join(f"| `{name}` | {text} |" for name, (text, _) in _dead_letter_header_fields().items())
    return f"""## When a command is not applied

A message on `{topics.commands}` that is not a valid command (not JSON, an unknown `type`, a missing or unknown
field, a time without offset, a key that is not the ticket id, ...) or that the engine refuses (a command the
ticket's state does not allow) is copied to `{topics.commands_dlq}`: the same key and value, byte for byte (a
value over 256 KiB is cut to that length), its headers kept, and these added:

| header | value |
|---|---|
{headers}

The reason of an invalid command names each failing field, like this one for an `OpenTicket` whose time has no
offset and whose actor has a space:

    {_example_reason()}

Read them with any consumer, e.g. `kafka-console-consumer.sh --topic {topics.commands_dlq} --from-beginning
--property print.headers=true --property print.key=true`. A dead-lettered command changed nothing: publish
the corrected command with a new `command_id`.
"""


def _example_reason() -> str:
    bad = {**_example_data("OpenTicket", 0), "occurred_at": "2026-03-02T10:00:00", "actor": "portal team"}
    try:
        parse_command(bad)
    except ValidationError as error:
        return explain(error)
    raise AssertionError("the bad example command passed validation")


def _readme_examples() -> str:
    blocks = [
        f"### {type(command).__name__}\n\n```json\n{json.dumps(example_value(command), indent=2)}\n```\n"
        for command in example_commands()
    ]
    return (
        "## Examples\n\nOne valid value per command type; `asyncapi.json` has them too, with their headers.\n\n"
        + "\n".join(blocks)
    )
