"""The public contract as files: JSON Schemas of the messages, an AsyncAPI document of the topics, a README."""

from __future__ import annotations

import json

from infra.contract.asyncapi import ASYNCAPI_FILE, asyncapi_document
from infra.contract.docs import README_FILE, readme
from infra.contract.examples import example_commands, example_value
from infra.contract.schemas import (
    ALERTS_FILE,
    COMMANDS_FILE,
    EVENT_NAMES,
    EVENTS_FILE,
    Json,
    alerts_schema,
    commands_schema,
    events_schema,
)
from infra.settings import TopicSettings

# The contract's tests and the schema command reach these through this module.
__all__ = [
    "ALERTS_FILE",
    "ASYNCAPI_FILE",
    "COMMANDS_FILE",
    "EVENTS_FILE",
    "EVENT_NAMES",
    "README_FILE",
    "contract_files",
    "default_topics",
    "example_commands",
    "example_value",
    "render_json",
]


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
        ALERTS_FILE: render_json(alerts_schema()),
        README_FILE: readme(topics),
    }
