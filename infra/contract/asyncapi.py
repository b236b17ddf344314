"""The AsyncAPI document of the topics: channels, operations, and messages with their keys, headers and examples."""

from __future__ import annotations

from typing import Any

from domain.commands import SCHEMA_VERSION, Command
from domain.events import DomainEvent
from infra import messages
from infra.contract.examples import example_commands, example_headers, example_value
from infra.contract.schemas import (
    ALERTS_FILE,
    COMMAND_NAMES,
    COMMANDS_FILE,
    EVENT_NAMES,
    EVENTS_FILE,
    KEY_PROPERTIES,
    PUBLIC_EVENTS,
    UUID_TEXT,
    Json,
    header_schemas,
)
from infra.settings import TopicSettings

ASYNCAPI_FILE = "asyncapi.json"
KAFKA_BINDING_VERSION = "0.5.0"


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
    "commands": ("commands", "Commands for the engine, keyed by ticket id (customer id for plans, month for closings).",
                 COMMAND_NAMES),
    "commandsDeadLetters": (
        "commands_dlq",
        "Messages of the commands topic that were invalid or refused, with the reason in headers.",
        ("DeadLetter",),
    ),
    "events": ("events", "Every stored event, in stream order per key.", EVENT_NAMES),
    "slaAlerts": ("sla_alerts", "SLA breaches and risks, enriched; written in transactions: read committed only.",
                  ("SlaAlert",)),
}  # fmt: skip
OPERATIONS: dict[str, tuple[str, str, str]] = {
    "sendCommand": ("send", "commands", "Publish a command."),
    "receiveEvent": ("receive", "events", "Follow what happened to tickets, customers and months."),
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


KEY_DESCRIPTIONS = {"customer_id": "The customer id.", "month": 'The month, like "2026-03".'}


def _message_key(name: str) -> Json:
    """The ticket id as a UUID, or for customer and month messages the property they are keyed by."""
    keyed_by = KEY_PROPERTIES.get(name)
    return _key(KEY_DESCRIPTIONS[keyed_by]) if keyed_by else _key("The ticket id.", **UUID_TEXT)


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
    return {
        "name": name,
        "title": name,
        "summary": type(command).__doc__ or f"The {name} command.",
        "payload": {"$ref": f"{COMMANDS_FILE}#/$defs/{name}"},
        "headers": _typed_headers("CommandHeaders", name),
        "bindings": _message_key(name),
        "examples": [{"name": name, "headers": example_headers(command), "payload": example_value(command)}],
    }


def _event_message(event: type[DomainEvent]) -> Json:
    name = event.__name__
    return {
        "name": name,
        "title": name,
        "summary": f"The {name} event; the {messages.MESSAGE_TYPE} header names it.",
        "payload": {"$ref": f"{EVENTS_FILE}#/$defs/{name}"},
        "headers": _typed_headers("EventHeaders", name),
        "bindings": _message_key(name),
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
        "bindings": _key("The original key: the ticket id, the customer id, the month, or none."),
    }


def _sla_alert_message() -> Json:
    return {
        "name": "SlaAlert",
        "title": "SLA alert",
        "summary": "One SLA breach or risk of one ticket, with its reference, customer, plan and current severity; "
        "exactly one committed alert per breach or risk, its alert_id derived from the event.",
        "payload": {"$ref": f"{ALERTS_FILE}#/$defs/SlaAlert"},
        "headers": {"$ref": "#/components/schemas/AlertHeaders"},
        "bindings": _key("The ticket id.", **UUID_TEXT),
    }
