"""Dead letters onto a DLQ topic: the original bytes and headers, with kind, reason and source added."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from consumers.records import DeadLetter
from infra.messages import DLQ_ORIGINAL_BYTES, DLQ_ORIGINAL_HEADER_BYTES, Headers, dead_letter_headers

log = logging.getLogger(__name__)
# Far more than any command may have, far less than the broker's 1 MiB message limit.
MAX_DEAD_LETTER_VALUE = 256 * 1024
# The original headers a dead letter keeps: headers count towards the broker's limit as much as the value does.
MAX_DEAD_LETTER_HEADERS = 256 * 1024


class DeadLetters:
    """Sends dead letters and waits until the broker has every one: only then may offsets be committed."""

    def __init__(self, producer: Any, topic: str):
        self.producer = producer
        self.topic = topic

    def send(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        now = datetime.now(UTC)
        sends = [self._send(letter, now) for letter in letters]
        self.producer.flush()
        for sent in sends:
            sent.get(timeout=0)  # raises the broker's refusal, so the batch's offsets are not committed

    def _send(self, letter: DeadLetter, now: datetime):
        record = letter.record
        original = _fitting_headers(record.headers or [])
        headers = dead_letter_headers(original, letter.kind, letter.reason, letter.source, now)
        value, headers = _fitting(record.value, headers)
        # kafka-python refuses to send neither key nor value (other clients may publish one): an empty key.
        key = b"" if record.key is None and value is None else record.key
        log.warning("dead letter %s (%s): %s", letter.source, letter.kind, letter.reason)
        return self.producer.send(self.topic, key=key, value=value, headers=headers)

    def close(self) -> None:
        self.producer.flush()
        self.producer.close()


def _fitting(value: bytes | None, headers: Headers) -> tuple[bytes | None, Headers]:
    """The value cut to what a dead letter can carry; the headers then say how long the original was.

    A message near the broker's size limit would no longer fit once the dlq headers are added: the send would
    fail on every restart and wedge the intake on that one record.
    """
    if value is None or len(value) <= MAX_DEAD_LETTER_VALUE:
        return value, headers
    return value[:MAX_DEAD_LETTER_VALUE], [*headers, (DLQ_ORIGINAL_BYTES, str(len(value)).encode())]


def _fitting_headers(headers) -> Headers:
    """The original headers, in order, as far as they fit a dead letter; then how many bytes they had in all.

    A record near the broker's limit through its headers (a small value, so never `oversized`) would not fit
    once the dlq headers are added: the send would fail on every restart and wedge the intake on that record.
    Null header values (other clients send them) go as empty ones: kafka-python's producer takes bytes only.
    """
    kept, size, total = [], 0, 0
    for name, value in headers:
        length = len(name.encode("utf-8", "replace")) + len(value or b"")
        total += length
        if size + length <= MAX_DEAD_LETTER_HEADERS:
            kept.append((name, value if value is not None else b""))
            size += length
    if total > size:
        kept.append((DLQ_ORIGINAL_HEADER_BYTES, str(total).encode()))
    return kept
