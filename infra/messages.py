"""The Kafka message envelope: header names and how commands, events and dead letters fill them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import cache

import orjson

from domain.commands import SCHEMA_VERSION, Command

# Headers every message carries; values are UTF-8 bytes.
MESSAGE_TYPE = "message-type"
SCHEMA = "schema-version"
MESSAGE_ID = "message-id"
# Events only: the position in the ticket's stream and in the store's log.
STREAM_VERSION = "stream-version"
NOTIFICATION_ID = "notification-id"
# Dead letters only.
DLQ_REASON = "dlq-reason"
DLQ_KIND = "dlq-kind"
DLQ_SOURCE = "dlq-source"
DLQ_AT = "dlq-at"
# Only on a dead letter whose value was cut to fit: the original's length in bytes.
DLQ_ORIGINAL_BYTES = "dlq-original-bytes"
# Only on a dead letter that kept only some of the original's headers: their length in all, in bytes.
DLQ_ORIGINAL_HEADER_BYTES = "dlq-original-header-bytes"

Headers = list[tuple[str, bytes]]
# The message type and schema version headers, the same for every event of one type.
TypeHeaders = tuple[tuple[str, bytes], tuple[str, bytes]]


def command_value(command: Command) -> bytes:
    return orjson.dumps(command.model_dump(mode="json"))


def command_headers(command: Command) -> Headers:
    return [
        (MESSAGE_TYPE, command.type.encode()),  # type: ignore[attr-defined]
        (SCHEMA, str(SCHEMA_VERSION).encode()),
        (MESSAGE_ID, str(command.command_id).encode()),
    ]


@cache
def event_type_headers(event_type: str, schema_version: int) -> TypeHeaders:
    """The headers every event of one type shares, built once per type."""
    return ((MESSAGE_TYPE, event_type.encode()), (SCHEMA, str(schema_version).encode()))


def event_headers(type_headers: TypeHeaders, event_id: str, version: int, notification_id: int) -> Headers:
    """The type's shared headers followed by this event's id, stream version and position in the store's log."""
    message_type, schema = type_headers
    return [
        message_type,
        schema,
        (MESSAGE_ID, event_id.encode()),
        (STREAM_VERSION, str(version).encode()),
        (NOTIFICATION_ID, str(notification_id).encode()),
    ]


def dead_letter_headers(
    original: Iterable[tuple[str, bytes]], kind: str, reason: str, source: str, at: datetime
) -> Headers:
    """The original headers kept, the reason added; a reason is cut to stay well under header limits."""
    kept = [(k, v) for k, v in original if not k.startswith("dlq-")]
    return [
        *kept,
        (DLQ_KIND, kind.encode()),
        (DLQ_REASON, reason[:4000].encode("utf-8", "replace")),
        (DLQ_SOURCE, source.encode()),
        (DLQ_AT, at.isoformat().encode()),
    ]


def header(headers: Iterable[tuple[str, bytes | None]] | None, name: str) -> str | None:
    """One header's value as text, or None."""
    for key, value in headers or ():
        if key == name and value is not None:
            return value.decode("utf-8", "replace")
    return None
