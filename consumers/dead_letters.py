"""Dead letters onto a DLQ topic: the original bytes and headers, with kind, reason and source added."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from consumers.records import DeadLetter
from infra.messages import DLQ_ORIGINAL_BYTES, Headers, dead_letter_headers

log = logging.getLogger(__name__)
# Far more than any command may have, far less than the broker's 1 MiB message limit.
MAX_DEAD_LETTER_VALUE = 256 * 1024


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
        headers = dead_letter_headers(record.headers or [], letter.kind, letter.reason, letter.source, now)
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
