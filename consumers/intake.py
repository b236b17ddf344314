"""Intake: commands from `tickets.commands` validated and applied through its write side; the rest to the DLQ."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import PersistenceError
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from consumers.dead_letters import DeadLetters
from consumers.idle_watch import IdleWatch
from consumers.parking import ParkingLot
from consumers.records import DeadLetter, Record, validate
from consumers.waiting import Waiting
from consumers.write_side import StatesReader, WriteSide
from domain.commands import Command
from domain.desk import Outcome, OutcomeStatus, TicketDesk
from infra.kafka.guard import UnreadableRecord
from infra.retry import FailuresInARow
from infra.settings import Settings

log = logging.getLogger(__name__)
# Dead letters of valid commands the domain refused; every other kind is a record that was not a valid command.
REFUSAL_KINDS = ("refused", "forbidden", "conflicting-repeat")


@dataclass
class IntakeStats:
    applied: int = 0
    unchanged: int = 0
    refused: int = 0
    invalid: int = 0
    # Waiting in the parking lot for a fact (a plan, an opening); counted again once applied or refused.
    parked: int = 0
    released: int = 0
    batches: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def count(self, outcomes: Sequence[Outcome], letters: Sequence[DeadLetter]) -> None:
        """Applied and unchanged from the outcomes; refused and invalid from the dead letters (refusals of valid
        commands, whatever their kind, against everything that was not a valid command)."""
        statuses = Counter(outcome.status for outcome in outcomes)
        self.applied += statuses[OutcomeStatus.APPLIED]
        self.unchanged += statuses[OutcomeStatus.UNCHANGED]
        kinds = Counter(letter.kind for letter in letters)
        refusals = sum(kinds[kind] for kind in REFUSAL_KINDS)
        self.refused += refusals
        self.invalid += sum(kinds.values()) - refusals
        for kind, count in kinds.items():
            self.by_kind[kind] = self.by_kind.get(kind, 0) + count


ConsumerFactory = Callable[[], Any]
# Told after each batch that stored something: (polled at, stored at, the batch's records), time.monotonic()
# instants. How a benchmark splits the latency; an intake without one pays nothing.
BatchObserver = Callable[[float, float, list[Any]], None]


class Intake:
    """Consumes command batches; offsets are committed only after the store, the lot and the DLQ hold the result.

    It receives its Kafka clients: `consumers` builds a KafkaConsumer subscribed to the commands topic (called
    again when the consumer must rejoin afresh), `dlq` is the producer for dead letters; and from the store,
    `read_states` reads a batch's streams at once (without one, the write side reads them one by one).
    """

    def __init__(
        self,
        settings: Settings,
        desk: TicketDesk,
        consumers: ConsumerFactory,
        dlq: Any,
        parking: ParkingLot,
        *,
        on_stored: Callable[[], None] = lambda: None,
        on_batch: BatchObserver | None = None,
        read_states: StatesReader | None = None,
    ):
        self.settings = settings
        self.desk = desk
        self.write_side = WriteSide(desk, read_states=read_states)
        self.consumers = consumers
        self.consumer = consumers()
        self.dead_letters = DeadLetters(dlq, settings.topics.commands_dlq)
        self.waiting = Waiting(parking, settings.park_max_seconds)
        self.on_stored = on_stored
        self.on_batch = on_batch
        self.instants = settings.accepted_instants()
        self.handled: dict[TopicPartition, OffsetAndMetadata] = {}
        self.stats = IntakeStats()
        self.idle = IdleWatch()
        self.store_failures = FailuresInARow("applying a batch to the event store", settings.retry_policy())

    def __enter__(self) -> Intake:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def run(self, *, stop: Callable[[], bool] = lambda: False, max_seconds: float | None = None) -> IntakeStats:
        """Process batches until `stop()` says so or `max_seconds` pass."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        while not stop() and (deadline is None or time.monotonic() < deadline):
            self.process_once()
            self.release_waiting()
            if self.idle.stuck(bool(self.consumer.assignment())):
                self._rejoin()
        return self.stats

    def process_once(self, timeout_ms: int | None = None) -> int:
        """One poll batch, in six steps; returns how many records it handled.

        1. Poll a batch; a record kafka-python cannot unpack becomes a dead letter and is skipped.
        2. Validate every record; invalid ones become dead letters.
        3. Apply the valid commands in ONE store transaction, except those queued behind a ticket's parked
           commands; refusals become dead letters, commands missing a fact wait (see Waiting).
        4. Park the waiting commands in the store's database.
        5. Publish the dead letters and wait until the broker has them.
        6. Commit the offsets after the batch. A crash before this redelivers the batch: command ids make
           the store ignore what it already has, the lot ignores what it holds; a dead letter may be sent
           twice, never zero times.
        """
        batch = self._poll(timeout_ms or self.settings.idle_wait_ms * 20)
        records = [record for partition in batch.values() for record in partition]
        if not records:
            return 0
        polled_at = time.monotonic()
        checked = [(record, validate(record, self.settings.max_command_bytes, self.instants)) for record in records]
        valid = [(record, c) for record, c in checked if not isinstance(c, DeadLetter)]
        letters = [c for _, c in checked if isinstance(c, DeadLetter)]
        try:
            outcomes, refused = self.waiting.apply(valid, self._apply)
        except PersistenceError as error:
            self._retry_later(batch, error)
            return 0
        stored_at = time.monotonic()
        self._finish(batch, outcomes, letters + refused)
        if self.on_batch is not None:
            self.on_batch(polled_at, stored_at, records)
        return len(records)

    def release_waiting(self) -> None:
        """Apply parked commands whose fact has arrived, and refuse those that waited too long."""
        try:
            released = self.waiting.release(self._apply, self.dead_letters.send)
        except PersistenceError as error:
            log.error("parked commands not released, the store is unavailable: %s", error)
            return
        if released:
            outcomes, letters = released
            self._stored(outcomes)
            self.stats.count(outcomes, letters)
            self.stats.released += len(outcomes) + len(letters)

    def _finish(self, batch: dict, outcomes: list[Outcome], letters: list[DeadLetter]) -> None:
        self.store_failures.cleared()
        self.dead_letters.send(letters)
        self._stored(outcomes)
        # Asynchronous: a commit that never lands only means a redelivery, which command ids make harmless.
        self.handled.update(_next_offsets(batch))
        self.consumer.commit_async(self._own_handled())
        self.stats.batches += 1
        self.stats.parked += self.waiting.parked_last
        self.stats.count(outcomes, letters)

    def _stored(self, outcomes: Sequence[Outcome]) -> None:
        if any(o.status is OutcomeStatus.APPLIED for o in outcomes):
            self.on_stored()
            self.waiting.facts_arrived(outcomes)

    def _poll(self, timeout_ms: int) -> dict:
        try:
            return self.consumer.poll(timeout_ms=timeout_ms)
        except UnreadableRecord as unreadable:
            self._skip(unreadable)
            return {}

    def _skip(self, unreadable: UnreadableRecord) -> None:
        """Dead-letter what is known of a record kafka-python cannot unpack, and go on after it."""
        tp, offset = unreadable.partition, unreadable.offset
        log.error("skipping unreadable record %s", unreadable)
        letter = DeadLetter(Record(tp.topic, tp.partition, offset, None, None), unreadable.kind, unreadable.reason)
        self.dead_letters.send([letter])
        self.stats.count([], [letter])
        self.consumer.seek(tp, offset + 1)
        self.handled[tp] = OffsetAndMetadata(offset + 1, "", -1)

    def _apply(self, commands: list[Command]) -> list[Outcome]:
        """The batch in one transaction; if a command trips a bug, each alone, so one bad command can't wedge us."""
        try:
            return self.write_side.handle_batch(commands)
        except PersistenceError:
            raise
        except Exception:
            log.exception("a batch of %d commands failed; applying them one by one", len(commands))
            return [self._apply_alone(command) for command in commands]

    def _apply_alone(self, command: Command) -> Outcome:
        try:
            return self.write_side.handle(command)
        except PersistenceError:
            raise
        except Exception as error:
            log.exception("command %s failed", command.command_id)
            return Outcome(command, OutcomeStatus.REFUSED, reason=f"internal error: {error!r}", kind="refused")

    def _retry_later(self, batch: dict, error: Exception) -> None:
        """Rewind to the batch's first offsets and wait: nothing of it was stored, so nothing is lost.

        After the retry policy's attempts in a row the intake gives up with Unavailable: `nettask run` then
        restarts it, up to its limit, and a service manager hears of an outage that does not pass.
        """
        for partition, records in batch.items():
            self.consumer.seek(partition, records[0].offset)
        time.sleep(self.store_failures.failed(error))

    def _rejoin(self) -> None:
        """Leave the group and join again with a new consumer; what was handled is committed first."""
        log.warning("the intake held no partition for %.0f s: rejoining the group with a new consumer",
                    self.idle.after)  # fmt: skip
        self._close_consumer()
        self.handled.clear()
        self.consumer = self.consumers()

    def _own_handled(self) -> dict[TopicPartition, OffsetAndMetadata]:
        """Handled offsets of the partitions still assigned: a revoked one's belong to its new owner now."""
        assigned = self.consumer.assignment()
        return {tp: offset for tp, offset in self.handled.items() if tp in assigned}

    def _close_consumer(self) -> None:
        # What was handled, committed for sure: spares the next intake a redelivery. Never the positions:
        # after an error they are past records that were not handled.
        try:
            if own := self._own_handled():
                self.consumer.commit(own)
        except Exception as error:  # a rebalance took the partitions: the new owner goes on from its commits
            log.warning("final offset commit failed: %s", error)
        self.consumer.close()

    def close(self) -> None:
        self.dead_letters.close()
        self._close_consumer()
        self.waiting.close()
        self.desk.close()


def _next_offsets(batch: dict[TopicPartition, list[Any]]) -> dict[TopicPartition, OffsetAndMetadata]:
    return {tp: OffsetAndMetadata(records[-1].offset + 1, "", -1) for tp, records in batch.items()}
