"""The intake's validation, batching and waiting, driven by fake Kafka clients: no broker, an in-memory store."""

from __future__ import annotations

import sqlite3
from collections import deque

import orjson
import pytest
from kafka.structs import TopicPartition

from consumers import records
from consumers.intake import Intake
from consumers.parking import ParkingLot
from domain import commands as cmd
from domain import events as ev
from infra.kafka.guard import BatchTooLarge, UnreadableRecord
from infra.messages import DLQ_KIND, DLQ_REASON, DLQ_SOURCE, command_headers, command_value, header
from infra.retry import Unavailable
from infra.settings import Settings
from tests.unit.builders import escalate, new_desk, open_ticket, respond, subscribe, unique

TOPIC = "tickets.commands"
PARTITION = TopicPartition(TOPIC, 0)


class FakeConsumer:
    """Hands out the batches it was given, one per poll; raises an exception given in their place."""

    def __init__(self):
        self.batches: deque = deque()
        self.offset = 0
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.committed: dict = {}

    def give(self, *commands: cmd.Command | bytes) -> None:
        batch = []
        for command in commands:
            value = command if isinstance(command, bytes) else command_value(command)
            key = command.key.encode() if isinstance(command, cmd.Command) else b"k"
            headers = command_headers(command) if isinstance(command, cmd.Command) else []
            batch.append(records.Record(TOPIC, 0, self.offset, key, value, headers))
            self.offset += 1
        self.batches.append({PARTITION: batch})

    def fail(self, error: Exception) -> None:
        self.batches.append(error)

    def poll(self, timeout_ms: int) -> dict:
        if not self.batches:
            return {}
        batch = self.batches.popleft()
        if isinstance(batch, Exception):
            raise batch
        return batch

    def assignment(self) -> set:
        return {PARTITION}

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))

    def commit_async(self, offsets: dict) -> None:
        self.committed.update(offsets)

    commit = commit_async

    def close(self) -> None:
        pass


class Sent:
    """What kafka-python's send returns, as far as the intake uses it: get() raises the broker's refusal."""

    def get(self, timeout: float | None = None) -> None:
        return None


class FakeProducer:
    def __init__(self):
        self.sent: list[dict] = []

    def send(self, topic: str, key: bytes | None, value: bytes | None, headers: list) -> Sent:
        self.sent.append({"topic": topic, "key": key, "value": value, "headers": headers})
        return Sent()

    def flush(self) -> None:
        pass

    close = flush


@pytest.fixture
def pipeline():
    consumer, producer, desk = FakeConsumer(), FakeProducer(), new_desk()
    memory = sqlite3.connect(":memory:", check_same_thread=False)
    settings = Settings(park_max_seconds=3600)
    intake = Intake(settings, desk, lambda: consumer, producer, ParkingLot(lambda: memory))
    intake.waiting.sweep_every = 0.0
    yield intake, consumer, producer
    intake.close()


def step(intake: Intake, rounds: int = 1) -> None:
    for _ in range(rounds):
        intake.process_once()
        intake.release_waiting()


def events_of(intake: Intake, ticket_id) -> list[str]:
    return [type(e).__name__ for e in intake.desk.events_of(ticket_id)]


def kinds(producer: FakeProducer) -> list[str]:
    return [header(letter["headers"], DLQ_KIND) for letter in producer.sent]


def test_an_opening_before_its_plan_and_its_follow_ups_wait_and_are_then_applied_in_order(pipeline):
    intake, consumer, producer = pipeline
    customer = unique("cust")
    opening = open_ticket(customer, "2026-03-02T10:00+01:00")
    reply = respond(opening.ticket_id, "2026-03-02T10:30+01:00")
    consumer.give(opening, reply)
    step(intake)
    assert (intake.desk.ticket(opening.ticket_id), intake.stats.parked) == (None, 2)

    consumer.give(subscribe(customer, "standard"), escalate(opening.ticket_id, "2026-03-02T11:00+01:00", to="B"))
    step(intake)

    assert events_of(intake, opening.ticket_id) == ["Opened", "Responded", "Escalated"]
    assert producer.sent == [] and intake.waiting.lot.count() == 0
    assert (intake.stats.applied, intake.stats.released) == (4, 3)


def test_a_command_for_a_ticket_never_opened_is_refused_once_it_waited_long_enough(pipeline):
    intake, consumer, producer = pipeline
    intake.waiting.max_seconds = 0.0
    stray = respond(cmd.ticket_id_for("portal", unique("REF")), "2026-03-02T10:30+01:00")
    consumer.give(stray)

    step(intake)

    assert kinds(producer) == ["refused"]
    assert "it was never opened (waited 0 s for it)" in header(producer.sent[0]["headers"], DLQ_REASON)
    assert producer.sent[0]["value"] == command_value(stray)
    assert intake.waiting.lot.count() == 0


def test_a_parked_command_survives_a_new_intake_on_the_same_database(pipeline):
    intake, consumer, producer = pipeline
    customer = unique("cust")
    opening = open_ticket(customer, "2026-03-02T10:00+01:00")
    consumer.give(opening)
    step(intake)
    lot = intake.waiting.lot
    again = Intake(Settings(), intake.desk, lambda: consumer, producer, ParkingLot(lot._connect))
    again.waiting.sweep_every = 0.0

    consumer.give(subscribe(customer, "standard"))
    step(again)

    assert events_of(again, opening.ticket_id) == ["Opened"]


def test_a_record_kafka_python_cannot_unpack_is_dead_lettered_and_skipped(pipeline):
    intake, consumer, producer = pipeline
    customer = unique("cust")
    consumer.fail(UnreadableRecord(PARTITION, 7, UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")))
    consumer.fail(UnreadableRecord(PARTITION, 9, BatchTooLarge("inflates to more than 16 MiB")))
    consumer.give(subscribe(customer, "standard"))

    step(intake, rounds=3)

    assert kinds(producer) == ["unreadable", "oversized"]
    assert [header(letter["headers"], DLQ_SOURCE) for letter in producer.sent] == [f"{TOPIC}/0/7", f"{TOPIC}/0/9"]
    assert consumer.seeks == [(PARTITION, 8), (PARTITION, 10)]
    assert intake.stats.applied == 1


def test_an_unexpected_error_while_validating_one_record_dead_letters_it_and_the_batch_goes_on(pipeline, monkeypatch):
    intake, consumer, producer = pipeline
    poison = b'{"type": "poison"}'
    real = records.parse_command

    def parse(value, instants):
        if value == poison:
            raise OverflowError("date value out of range")
        return real(value, instants)

    monkeypatch.setattr(records, "parse_command", parse)
    customer = unique("cust")
    consumer.give(poison, subscribe(customer, "standard"))

    step(intake)

    assert kinds(producer) == ["invalid"]
    assert "OverflowError: date value out of range" in header(producer.sent[0]["headers"], DLQ_REASON)
    assert intake.stats.applied == 1


def test_refusals_keep_their_kind_on_the_dead_letter_topic(pipeline):
    intake, consumer, producer = pipeline
    customer = unique("cust")
    opening = open_ticket(customer, "2026-03-02T10:00+01:00")
    reply = respond(opening.ticket_id, "2026-03-02T10:30+01:00")
    reused = respond(opening.ticket_id, "2026-03-02T10:40+01:00", command_id=reply.command_id)
    forged = {**orjson.loads(command_value(reply)), "type": "RecordSlaBreach", "metric": "first_response"}
    forged["command_id"] = str(cmd.uuid5(reply.command_id, "forged"))
    consumer.give(subscribe(customer, "standard"), opening, reply, reused, cmd.parse_command(forged))

    step(intake)

    assert kinds(producer) == ["conflicting-repeat", "forbidden"]
    assert ev.SlaBreached.__name__ not in events_of(intake, opening.ticket_id)


def test_a_database_that_fails_makes_the_intake_retry_the_batch_then_give_up_naming_it():
    consumer, producer = FakeConsumer(), FakeProducer()

    lot = ParkingLot(lambda: sqlite3.connect(":memory:"))
    lot.close()  # the database went away after the start

    def unreachable():
        raise sqlite3.OperationalError("unable to open database file")

    lot._connect = unreachable
    settings = Settings(retry_attempts=3, retry_first_delay_s=0.01)
    intake = Intake(settings, new_desk(), lambda: consumer, producer, lot)
    plan = subscribe(unique("cust"), "standard")
    consumer.give(plan)
    consumer.give(plan)

    assert intake.process_once() == intake.process_once() == 0
    consumer.give(plan)
    with pytest.raises(Unavailable, match="failed 3 times in a row, giving up; last error: PersistenceError"):
        intake.process_once()
    assert consumer.seeks == [(PARTITION, offset) for offset in range(3)]  # each batch rewound to its start
    assert producer.sent == []


def test_two_waiting_records_that_reuse_one_command_id_are_both_decided_none_lost(pipeline):
    intake, consumer, producer = pipeline
    customer = unique("cust")
    opening = open_ticket(customer, "2026-03-02T10:00+01:00")
    reply = respond(opening.ticket_id, "2026-03-02T10:30+01:00")
    reused = escalate(opening.ticket_id, "2026-03-02T10:40+01:00", to="B", command_id=reply.command_id)
    consumer.give(opening, reply, reused)
    step(intake)
    assert intake.waiting.lot.count() == 3

    consumer.give(subscribe(customer, "standard"))
    step(intake)

    assert events_of(intake, opening.ticket_id) == ["Opened", "Responded"]
    assert kinds(producer) == ["conflicting-repeat"]
    assert producer.sent[0]["value"] == command_value(reused)


def test_an_observer_is_told_when_each_batch_was_polled_and_stored(pipeline):
    intake, consumer, _producer = pipeline
    told: list[tuple[float, float, list]] = []
    intake.on_batch = lambda polled_at, stored_at, records: told.append((polled_at, stored_at, records))
    customer = unique("cust")
    consumer.give(subscribe(customer, "standard"), open_ticket(customer, "2026-03-02T10:00+01:00"))
    step(intake, rounds=2)  # the second poll finds nothing: no batch, nothing told

    [(polled_at, stored_at, records)] = told
    assert polled_at <= stored_at and len(records) == 2


def test_invalid_records_are_dead_lettered_with_a_reason_and_the_valid_ones_of_their_batch_applied(pipeline):
    intake, consumer, producer = pipeline
    customer = unique("cust")
    opening = open_ticket(customer, "2026-03-02T10:00+01:00")
    unknown_type = orjson.dumps({**orjson.loads(command_value(opening)), "type": "DeleteEverything"})
    consumer.give(subscribe(customer, "standard"), b"not json at all", unknown_type, opening)

    step(intake)

    assert kinds(producer) == ["invalid-json", "unknown-type"]
    assert all(header(letter["headers"], DLQ_REASON) for letter in producer.sent)
    assert [letter["value"] for letter in producer.sent] == [b"not json at all", unknown_type]
    assert events_of(intake, opening.ticket_id) == ["Opened"]
    assert (intake.stats.applied, intake.stats.invalid, intake.stats.batches) == (2, 2, 1)


def test_a_poll_batch_is_stored_in_one_transaction_and_its_offsets_committed_after_it(pipeline, monkeypatch):
    intake, consumer, _producer = pipeline
    saves = []
    real_save = intake.desk.save
    monkeypatch.setattr(
        intake.desk, "save", lambda *objects, **kw: saves.append(len(objects)) or real_save(*objects, **kw)
    )
    customer = unique("cust")
    openings = [open_ticket(customer, "2026-03-02T10:00+01:00") for _ in range(5)]
    consumer.give(subscribe(customer, "standard"), *openings)

    step(intake)

    assert len(saves) == 1
    assert consumer.committed[PARTITION].offset == 6  # the next offset after the batch's last record


def test_a_redelivered_batch_changes_nothing(pipeline):
    intake, consumer, producer = pipeline
    customer = unique("cust")
    opening = open_ticket(customer, "2026-03-02T10:00+01:00")
    batch = [subscribe(customer, "standard"), opening, respond(opening.ticket_id, "2026-03-02T10:30+01:00")]
    consumer.give(*batch)
    step(intake)
    consumer.give(*batch)  # as after a crash before the offset commit

    step(intake)

    assert events_of(intake, opening.ticket_id) == ["Opened", "Responded"]
    assert (intake.stats.applied, intake.stats.unchanged, producer.sent) == (3, 3, [])
