"""A record from `tickets.commands` checked at the edge: a command, or a dead letter saying why it is not one."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from domain.commands import DEFAULT_INSTANTS, CloseMonth, Command, InstantRange, SubscribePlan, parse_command
from domain.validation import validation_problems

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Record:
    """What the intake needs of a Kafka record; kafka-python's ConsumerRecord has these fields too."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any = ()


@dataclass(frozen=True)
class DeadLetter:
    record: Any  # a Record or a ConsumerRecord
    kind: str
    reason: str

    @property
    def source(self) -> str:
        return f"{self.record.topic}/{self.record.partition}/{self.record.offset}"


def validate(record: Any, max_bytes: int, instants: InstantRange = DEFAULT_INSTANTS) -> Command | DeadLetter:
    """A command, or why it is not one: empty, oversized, not JSON, unknown type, schema violation, wrong key.

    Never raises: whatever a producer sent, the intake must go on to the next record.
    """
    value = record.value
    if not value:
        return DeadLetter(record, "empty", "the message has no value")
    if len(value) > max_bytes:
        return DeadLetter(record, "oversized", f"{len(value)} bytes, more than the {max_bytes} a command may have")
    try:
        command = parse_command(value, instants)
    except ValidationError as error:
        return DeadLetter(record, _kind_of(error), validation_problems(error))
    except Exception as error:  # a bug of ours or of a library, met on this record only
        log.exception("validating %s/%s/%s failed", record.topic, record.partition, record.offset)
        return DeadLetter(record, "invalid", f"cannot be read as a command: {type(error).__name__}: {error}")
    return _keyed_right(record, command)


def _keyed_right(record: Any, command: Command) -> Command | DeadLetter:
    # Per-ticket order holds only if every command of a ticket lands on the ticket's partition.
    if record.key == command.key.encode():
        return command
    shown = record.key.decode("utf-8", "replace") if record.key is not None else "none"
    return DeadLetter(record, "wrong-key", f"the key must be {command.key} (the {_key_name(command)}), not {shown}")


def _key_name(command: Command) -> str:
    if isinstance(command, CloseMonth):
        return "month"
    return "customer id" if isinstance(command, SubscribePlan) else "ticket id"


def _kind_of(error: ValidationError) -> str:
    kinds = {e["type"] for e in error.errors()}
    if "json_invalid" in kinds or "json_type" in kinds:
        return "invalid-json"
    if kinds & {"union_tag_invalid", "union_tag_not_found"}:
        return "unknown-type"
    return "schema"
