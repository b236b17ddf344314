"""Intake: commands from `tickets.commands` validated and applied through TicketDesk; the rest to the DLQ."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from eventsourcing.persistence import PersistenceError
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from domain.commands import Command, SubscribePlan, explain, parse_command
from domain.desk import Outcome, TicketDesk
from infra.messages import DLQ_ORIGINAL_BYTES, Headers, dead_letter_headers
from infra.settings import Settings

log = logging.getLogger(__name__)
# The store is down or locked: retry the same poll batch after this pause rather than dead-letter it.
STORE_RETRY_SECONDS = 1.0
# A crashed intake keeps its partitions until its session expires, and no command is applied meanwhile: the
# client's default of 45 s stalled every restart after a kill -9 for that long. Heartbeats come from a background
# thread every 3 s, so a long batch does not end the session; max_poll_interval_ms still guards a wedged loop.
SESSION_TIMEOUT_MS = 10_000
# The broker answers a waiting fetch as soon as a record arrives, so a long wait adds no latency; a short one
# only turns an idle intake into a busy loop of empty fetches.
FETCH_WAIT_MS = 200
# An intake without partitions for this long is reported: over-provisioned, or stuck (see _IdleWatch).
NO_PARTITIONS_WARNING_S = 60.0
# Far more than any command may have, far less than the broker's 1 MiB message limit.
MAX_DEAD_LETTER_VALUE = 256 * 1024


@dataclass(frozen=True)
class DeadLetter:
    record: ConsumerRecord
    kind: str
    reason: str


@dataclass
class IntakeStats:
    applied: int = 0
    unchanged: int = 0
    refused: int = 0
    invalid: int = 0
    batches: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def count(self, outcomes: list[Outcome], letters: list[DeadLetter]) -> None:
        self.batches += 1
        for outcome in outcomes:
            setattr(self, outcome.status, getattr(self, outcome.status) + 1)
        self.invalid += sum(1 for letter in letters if letter.kind != "refused")
        for letter in letters:
            self.by_kind[letter.kind] = self.by_kind.get(letter.kind, 0) + 1


def validate(record: ConsumerRecord, max_bytes: int) -> Command | DeadLetter:
    """A command, or why it is not one: empty, oversized, not JSON, unknown type, schema violation, wrong key."""
    value = record.value
    if not value:
        return DeadLetter(record, "empty", "the message has no value")
    if len(value) > max_bytes:
        return DeadLetter(record, "oversized", f"{len(value)} bytes, more than the {max_bytes} a command may have")
    try:
        command = parse_command(value)
    except ValidationError as error:
        return DeadLetter(record, _kind_of(error), explain(error))
    if record.key != command.key.encode():
        # Per-ticket order holds only if every command of a ticket lands on the ticket's partition.
        shown = record.key.decode("utf-8", "replace") if record.key is not None else "none"
        return DeadLetter(record, "wrong-key", f"the key must be {command.key} (the {_key_name(command)}), not {shown}")
    return command


def _key_name(command: Command) -> str:
    return "customer id" if isinstance(command, SubscribePlan) else "ticket id"


def _kind_of(error: ValidationError) -> str:
    kinds = {e["type"] for e in error.errors()}
    if "json_invalid" in kinds or "json_type" in kinds:
        return "invalid-json"
    if kinds & {"union_tag_invalid", "union_tag_not_found"}:
        return "unknown-type"
    return "schema"


class Intake:
    """Consumes command batches; offsets are committed only after the store and the DLQ hold the result."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        desk: TicketDesk,
        *,
        group: str | None = None,
        on_stored: Callable[[], None] = lambda: None,
    ):
        self.settings = settings
        self.desk = desk
        self.on_stored = on_stored
        self.handled: dict[TopicPartition, OffsetAndMetadata] = {}
        self.stats = IntakeStats()
        self.consumer = KafkaConsumer(
            settings.topics.commands,
            bootstrap_servers=bootstrap,
            group_id=group or settings.intake_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.intake_batch,
            fetch_max_wait_ms=FETCH_WAIT_MS,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            # Oversized values must reach validate() to be dead-lettered, not stall the fetcher.
            max_partition_fetch_bytes=max(1024 * 1024, settings.max_command_bytes * 4),
        )
        # The topic's partitions known before the first join: otherwise the first assignment is empty and a second
        # join follows at once, which kafka-python 3.0.12 can abandon when a short poll times out mid-join (the
        # member then holds no partitions, sends no heartbeats and never rejoins: the intake silently stops).
        self.consumer.partitions_for_topic(settings.topics.commands)
        self.dlq = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0, enable_idempotence=True)

    def run(self, *, stop: Callable[[], bool] = lambda: False, max_seconds: float | None = None) -> IntakeStats:
        """Process batches until `stop()` says so or `max_seconds` pass."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        idle = _IdleWatch()
        while not stop() and (deadline is None or time.monotonic() < deadline):
            self.process_once()
            idle.check(bool(self.consumer.assignment()))
        return self.stats

    def process_once(self, timeout_ms: int | None = None) -> int:
        """One poll batch, in four steps; returns how many records it handled.

        1. Poll a batch and validate every record; invalid ones become dead letters.
        2. Apply the valid commands in ONE store transaction; refusals become dead letters too.
        3. Publish the dead letters and wait until the broker has them.
        4. Commit the offsets after the batch. A crash before this redelivers the batch: command ids make
           the store ignore what it already has; a refusal may reach the DLQ twice, never zero times.
        """
        batch = self.consumer.poll(timeout_ms=timeout_ms or self.settings.idle_wait_ms * 20)
        records = [record for partition in batch.values() for record in partition]
        if not records:
            return 0
        checked = [(record, validate(record, self.settings.max_command_bytes)) for record in records]
        valid = [(record, c) for record, c in checked if not isinstance(c, DeadLetter)]
        letters = [c for _, c in checked if isinstance(c, DeadLetter)]
        try:
            outcomes = self._apply([c for _, c in valid])
        except PersistenceError as error:
            self._retry_later(batch, error)
            return 0
        # Outcomes come back in command order, so each refusal pairs with its record.
        letters += [DeadLetter(r, "refused", o.reason) for (r, _), o in zip(valid, outcomes, strict=True) if o.refused]
        self._dead_letter(letters)
        if any(o.status == "applied" for o in outcomes):
            self.on_stored()
        # Asynchronous: a commit that never lands only means a redelivery, which command ids make harmless.
        self.handled.update(_next_offsets(batch))
        self.consumer.commit_async(self._own_handled())
        self.stats.count(outcomes, letters)
        return len(records)

    def _apply(self, commands: list[Command]) -> list[Outcome]:
        """The batch in one transaction; if a command trips a bug, each alone, so one bad command can't wedge us."""
        try:
            return self.desk.handle_batch(commands)
        except PersistenceError:
            raise
        except Exception:
            log.exception("a batch of %d commands failed; applying them one by one", len(commands))
            return [self._apply_alone(command) for command in commands]

    def _apply_alone(self, command: Command) -> Outcome:
        try:
            return self.desk.handle(command)
        except PersistenceError:
            raise
        except Exception as error:
            log.exception("command %s failed", command.command_id)
            return Outcome(command, "refused", reason=f"internal error: {error!r}")

    def _dead_letter(self, letters: list[DeadLetter]) -> None:
        now = datetime.now(UTC)
        sends = []
        for letter in letters:
            record = letter.record
            source = f"{record.topic}/{record.partition}/{record.offset}"
            headers = dead_letter_headers(record.headers or [], letter.kind, letter.reason, source, now)
            value, headers = _fitting(record.value, headers)
            # kafka-python refuses to send neither key nor value (other clients may publish one): an empty key.
            key = b"" if record.key is None and value is None else record.key
            sends.append(self.dlq.send(self.settings.topics.commands_dlq, key=key, value=value, headers=headers))
            log.warning("dead letter %s (%s): %s", source, letter.kind, letter.reason)
        if letters:
            self.dlq.flush()
        for send in sends:
            send.get(timeout=0)  # raises the broker's refusal, so the batch's offsets are not committed

    def _retry_later(self, batch: dict, error: Exception) -> None:
        """Rewind to the batch's first offsets: nothing of it was stored, so nothing is lost."""
        log.error("event store unavailable, retrying in %.1f s: %s", STORE_RETRY_SECONDS, error)
        for partition, records in batch.items():
            self.consumer.seek(partition, records[0].offset)
        time.sleep(STORE_RETRY_SECONDS)

    def _own_handled(self) -> dict[TopicPartition, OffsetAndMetadata]:
        """Handled offsets of the partitions still assigned: a revoked one's belong to its new owner now."""
        assigned = self.consumer.assignment()
        return {tp: offset for tp, offset in self.handled.items() if tp in assigned}

    def close(self) -> None:
        self.dlq.flush()
        self.dlq.close()
        # What was handled, committed for sure: spares the next intake a redelivery. Never the positions:
        # after an error they are past records that were not handled.
        try:
            if own := self._own_handled():
                self.consumer.commit(own)
        except KafkaError as error:  # a rebalance took the partitions: the new owner goes on from its commits
            log.warning("final offset commit failed: %s", error)
        self.consumer.close()
        self.desk.close()


class _IdleWatch:
    """Says so, loudly and now and then, when the intake holds no partition.

    That is normal while a group has more intakes than partitions, but it is also how a kafka-python 3.0.12
    rejoin race shows itself: the member stops heartbeating and never rejoins, with no error anywhere.
    """

    def __init__(self, warn_after: float = NO_PARTITIONS_WARNING_S):
        self.warn_after = warn_after
        self.since: float | None = None

    def check(self, assigned: bool) -> None:
        now = time.monotonic()
        if assigned:
            self.since = None
        elif self.since is None:
            self.since = now
        elif now - self.since >= self.warn_after:
            log.error(
                "the intake has held no partition for %.0f s: check the group; restart if it is stuck", now - self.since
            )
            self.since = now


def _fitting(value: bytes | None, headers: Headers) -> tuple[bytes | None, Headers]:
    """The value cut to what a dead letter can carry; the headers then say how long the original was.

    A message near the broker's size limit would no longer fit once the dlq headers are added: the send would
    fail on every restart and wedge the intake on that one record.
    """
    if value is None or len(value) <= MAX_DEAD_LETTER_VALUE:
        return value, headers
    return value[:MAX_DEAD_LETTER_VALUE], [*headers, (DLQ_ORIGINAL_BYTES, str(len(value)).encode())]


def _next_offsets(batch: dict[TopicPartition, list[ConsumerRecord]]) -> dict[TopicPartition, OffsetAndMetadata]:
    return {tp: OffsetAndMetadata(records[-1].offset + 1, "", -1) for tp, records in batch.items()}
