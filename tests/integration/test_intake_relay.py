"""Intake and relay against the real broker, on SQLite and PostgreSQL: commands in, events out, dead letters aside."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from uuid import UUID, uuid4

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from consumers.intake import Intake
from domain import commands as c
from infra.compose.components import build_intake, build_relay
from infra.compose.desk import build_desk
from infra.kafka.topics import delete_topic
from infra.messages import (
    DLQ_KIND,
    DLQ_ORIGINAL_BYTES,
    DLQ_REASON,
    MESSAGE_ID,
    MESSAGE_TYPE,
    NOTIFICATION_ID,
    SCHEMA,
    STREAM_VERSION,
    header,
)
from infra.settings import Settings
from producers.client import CommandPublisher
from tests.integration.helpers import (
    T0,
    RawMessage,
    as_message,
    customer_reply,
    delete_pipeline_topics,
    drain,
    event_of,
    handled,
    open_ticket,
    pipeline_settings,
    publish,
    publish_raw,
    read_all,
    relay_everything,
    respond,
    stored_log,
    subscribe,
    topic_size,
    unique,
)

pytestmark = pytest.mark.kafka


@pytest.fixture
def pipeline(store_settings: Settings, kafka_bootstrap: str) -> Iterator[Settings]:
    """The store's settings with random topics, intake group and relay name; the topics go afterwards."""
    settings = pipeline_settings(store_settings, kafka_bootstrap)
    yield settings
    delete_pipeline_topics(kafka_bootstrap, settings)


def subscribed(settings: Settings, bootstrap: str, intake: Intake, *plans: str) -> list[str]:
    """New customers on `plans`, their subscriptions applied before any ticket command is published.

    Subscriptions are keyed by customer and tickets by ticket id, so they may sit on different partitions:
    only waiting here makes sure an OpenTicket finds its customer's plan.
    """
    subscriptions = [subscribe(unique("cust"), plan) for plan in plans]
    publish(bootstrap, settings.topics.commands, subscriptions)
    drain(intake, until=lambda: intake.stats.applied >= len(plans))
    return [s.customer_id for s in subscriptions]


# --- 1. round trip ----------------------------------------------------------------------------------------


def test_commands_come_out_as_events_keyed_by_ticket_with_their_headers(pipeline, kafka_bootstrap):
    intake = build_intake(pipeline, kafka_bootstrap)
    try:
        (customer,) = subscribed(pipeline, kafka_bootstrap, intake, "standard")
        opening = open_ticket(customer)
        reply = respond(opening.ticket_id, T0 + timedelta(hours=1))
        publish(kafka_bootstrap, pipeline.topics.commands, [opening, reply])
        drain(intake, until=lambda: intake.stats.applied == 3)
    finally:
        intake.close()
    relay = build_relay(pipeline, kafka_bootstrap)
    try:
        assert relay_everything(relay) == 3
    finally:
        relay.close()

    records = read_all(kafka_bootstrap, pipeline.topics.events, expected_count=3)
    assert [r.key for r in records].count(customer.encode()) == 1
    on_ticket = [r for r in records if r.key == str(opening.ticket_id).encode()]
    assert [header(r.headers, MESSAGE_TYPE) for r in on_ticket] == ["Opened", "Responded"]
    published = [event_of(r) for r in on_ticket]
    assert [e.command_id for e in published] == [opening.command_id, reply.command_id]
    for version, (record, event) in enumerate(zip(on_ticket, published, strict=True), start=1):
        assert header(record.headers, SCHEMA) == "1"
        assert header(record.headers, MESSAGE_ID) == str(event.event_id)
        assert header(record.headers, STREAM_VERSION) == str(version) == str(event.originator_version)
    notification_ids = [int(header(r.headers, NOTIFICATION_ID)) for r in on_ticket]
    assert notification_ids == sorted(notification_ids)
    desk = build_desk(pipeline)
    try:
        assert published == list(desk.events_of(opening.ticket_id))
    finally:
        desk.close()


# --- 2. redelivery --------------------------------------------------------------------------------------


def test_a_command_delivered_again_changes_nothing(pipeline, kafka_bootstrap):
    intake = build_intake(pipeline, kafka_bootstrap)
    try:
        (customer,) = subscribed(pipeline, kafka_bootstrap, intake, "standard")
        opening = open_ticket(customer)
        reply = respond(opening.ticket_id, T0 + timedelta(hours=1))
        # The same commands again in the same poll batch, and again in a later one.
        publish(kafka_bootstrap, pipeline.topics.commands, [opening, reply, opening, reply])
        drain(intake, until=lambda: handled(intake) == 5)
        publish(kafka_bootstrap, pipeline.topics.commands, [reply, opening])
        drain(intake, until=lambda: handled(intake) == 7)
    finally:
        intake.close()
    relay = build_relay(pipeline, kafka_bootstrap)
    try:
        relay_everything(relay)
    finally:
        relay.close()

    assert (intake.stats.applied, intake.stats.unchanged, intake.stats.refused) == (3, 4, 0)
    assert topic_size(kafka_bootstrap, pipeline.topics.events) == 3
    assert topic_size(kafka_bootstrap, pipeline.topics.commands_dlq) == 0
    on_ticket = [
        r for r in read_all(kafka_bootstrap, pipeline.topics.events, 3) if r.key == str(opening.ticket_id).encode()
    ]
    assert [header(r.headers, MESSAGE_TYPE) for r in on_ticket] == ["Opened", "Responded"]


# --- 3. order per ticket --------------------------------------------------------------------------------

PUBLISHERS = 4
TICKETS_PER_PUBLISHER = 10
REPLIES_PER_TICKET = 5


def ticket_stories(customer: str, start_minute: int) -> list[list[c.Command]]:
    """Each ticket's commands in order: open, then customer replies a minute apart."""
    stories = []
    for n in range(TICKETS_PER_PUBLISHER):
        opening = open_ticket(customer, T0 + timedelta(minutes=start_minute + n))
        replies = [
            customer_reply(opening.ticket_id, opening.occurred_at + timedelta(minutes=1 + k))
            for k in range(REPLIES_PER_TICKET)
        ]
        stories.append([opening, *replies])
    return stories


def interleaved(stories: list[list[c.Command]]) -> list[c.Command]:
    """Round robin over the tickets: step k of every ticket before step k+1 of any."""
    return [story[step] for step in range(len(stories[0])) for story in stories]


def test_events_of_each_ticket_reach_one_partition_in_stream_order(pipeline, kafka_bootstrap):
    intake = build_intake(pipeline, kafka_bootstrap)
    try:
        customers = subscribed(pipeline, kafka_bootstrap, intake, *["standard"] * PUBLISHERS)
        sequences = [interleaved(ticket_stories(cust, 100 * n)) for n, cust in enumerate(customers)]
        publishers = [CommandPublisher(kafka_bootstrap, pipeline.topics.commands, linger_ms=1) for _ in sequences]
        threads = [
            threading.Thread(target=_publish_one_by_one, args=(publisher, sequence))
            for publisher, sequence in zip(publishers, sequences, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        commands = sum(len(s) for s in sequences)
        drain(intake, until=lambda: intake.stats.applied == PUBLISHERS + commands)
    finally:
        intake.close()
        for publisher in publishers:
            publisher.close(timeout=10)
    relay = build_relay(pipeline, kafka_bootstrap)
    try:
        relay_everything(relay)
    finally:
        relay.close()

    records = read_all(kafka_bootstrap, pipeline.topics.events, expected_count=PUBLISHERS + commands)
    by_ticket = defaultdict(list)
    for record in records:
        if header(record.headers, MESSAGE_TYPE) != "PlanSubscribed":
            by_ticket[record.key].append(record)
    assert len(by_ticket) == PUBLISHERS * TICKETS_PER_PUBLISHER
    for ticket_records in by_ticket.values():
        assert len({r.partition for r in ticket_records}) == 1
        versions = [int(header(r.headers, STREAM_VERSION)) for r in ticket_records]
        assert versions == list(range(1, REPLIES_PER_TICKET + 2))


def _publish_one_by_one(publisher: CommandPublisher, commands: list[c.Command]) -> None:
    """Send each command on its own, so that the four publishers' sends interleave on the topic."""
    for command in commands:
        publisher.publish(command)
    publisher.flush(timeout=30)


# --- 4. malformed, hostile and refused commands -------------------------------------------------------------

BAD_MESSAGES = 1000
INDEX = "test-index"
INVALID_KINDS = {"empty", "oversized", "invalid-json", "unknown-type", "schema"}


class Hostile:
    """Seeded generator of messages that are not commands, or commands the domain refuses, among valid ones."""

    def __init__(self, rng: random.Random, standard: str, basic: str, max_bytes: int):
        self.rng = rng
        self.standard = standard
        self.basic = basic
        self.max_bytes = max_bytes
        self.opened: list[c.OpenTicket] = []
        self.responses: dict[UUID, list[c.RecordResponse]] = defaultdict(list)
        self.seconds = 0

    # valid commands: openings (some with unusual but legal text) and responses to earlier openings

    def valid(self) -> c.Command:
        self.seconds += 1
        if self.opened and self.rng.random() < 0.4:
            ticket = self.rng.choice(self.opened)
            response = respond(ticket.ticket_id, T0 + timedelta(minutes=30, seconds=self.seconds))
            self.responses[ticket.ticket_id].append(response)
            return response
        subject = self.rng.choice(LEGAL_SUBJECTS)
        opening = open_ticket(self.standard, T0 + timedelta(seconds=self.seconds), subject=subject)
        self.opened.append(opening)
        return opening

    # bad messages: each returns (message, expected dead-letter kind or None for "any invalid kind")

    def bad(self) -> tuple[RawMessage, str | None]:
        name = self.rng.choices(list(BAD_WEIGHTS), weights=list(BAD_WEIGHTS.values()))[0]
        made = getattr(self, f"_{name}")()
        if isinstance(made, c.Command):
            return as_message(made), "refused"
        value, kind = made if isinstance(made, tuple) else (made, None)
        return RawMessage(self._key(), value), kind

    def _key(self) -> bytes | None:
        roll = self.rng.random()
        if roll < 0.2:
            return None
        if roll < 0.3:
            return self.rng.randbytes(self.rng.randrange(1, 40))
        return str(uuid4()).encode()

    def _template(self) -> dict:
        if self.opened and self.rng.random() < 0.5:
            command = respond(self.rng.choice(self.opened).ticket_id, T0 + timedelta(hours=1))
        else:
            command = open_ticket(self.standard, T0 + timedelta(hours=1))
        return command.model_dump(mode="json")

    def _truncated_json(self) -> bytes:
        text = orjson.dumps(self._template())
        return text[: self.rng.randrange(1, len(text) - 1)]

    def _not_json(self) -> bytes:
        return self.rng.choice(NOT_JSON)

    def _binary_garbage(self) -> bytes:
        return self.rng.randbytes(self.rng.randrange(16, 600))

    def _empty(self) -> tuple[bytes | None, str]:
        return self.rng.choice([b"", None]), "empty"

    def _not_an_object(self) -> bytes:
        return self.rng.choice([b"[]", b"[1, 2]", b"42", b"-1.5e300", b'"OpenTicket"', b"null", b"true", b"{}"])

    def _array_of_commands(self) -> bytes:
        return orjson.dumps([self._template()])

    def _unknown_type(self) -> bytes:
        command = self._template()
        command["type"] = self.rng.choice(["DeleteAllTickets", "openticket", "", "OpenTicket ", 42, None, ["x"]])
        return orjson.dumps(command)

    def _missing_field(self) -> bytes:
        command = self._template()
        model = type(c.parse_command(command))
        required = [name for name, info in model.model_fields.items() if info.is_required()]
        del command[self.rng.choice(["type", *required])]
        return orjson.dumps(command)

    def _wrong_type(self) -> bytes:
        command = self._template()
        name, values = self.rng.choice(list(WRONG_VALUES.items()))
        command[name] = self.rng.choice(values)
        return orjson.dumps(command)

    def _naive_datetime(self) -> bytes:
        command = self._template()
        command["occurred_at"] = self.rng.choice(["2026-03-02T10:00:00", "2026-03-02 10:00", "2026-03-02"])
        return orjson.dumps(command)

    def _huge_string(self) -> bytes:
        command = open_ticket(self.standard).model_dump(mode="json")
        field, limit = self.rng.choice([("subject", 2000), ("reference", 200), ("department", 64), ("actor", 64)])
        command[field] = "x" * self.rng.randrange(limit + 1, limit * 10)
        if field == "reference":
            del command["ticket_id"]  # the derived id would otherwise be the first complaint
        return orjson.dumps(command)

    def _oversized(self) -> tuple[bytes, str]:
        command = open_ticket(self.standard).model_dump(mode="json")
        command["subject"] = "y" * (self.max_bytes + self.rng.randrange(1, 40_000))
        return orjson.dumps(command), "oversized"

    def _deeply_nested(self) -> tuple[bytes, str]:
        depth = self.rng.randrange(1_000, 10_000)  # deep enough for any parser's limit, small enough to read
        if self.rng.random() < 0.5:
            return b"[" * depth + b"]" * depth, "invalid-json"
        command = orjson.dumps(self._template())
        return command[:-1] + b',"extra":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}", "invalid-json"

    def _unicode(self) -> bytes:
        command = open_ticket(self.standard).model_dump(mode="json")
        field = self.rng.choice(["actor", "customer_id", "department", "source"])
        command[field] = self.rng.choice(ILLEGAL_NAMES)
        text = orjson.dumps(command)
        roll = self.rng.random()
        if roll < 0.2:
            return b"\xef\xbb\xbf" + text  # a byte-order mark: not JSON
        if roll < 0.4:
            return text.replace(b'"portal"', b'"\xff\xfe\xfd"', 1)  # invalid UTF-8 inside a string
        if roll < 0.6:
            return text.replace(b'"portal"', b'"\\ud800"', 1)  # a lone surrogate
        return text

    def _extra_field(self) -> bytes:
        command = self._template()
        command[self.rng.choice(["is_admin", "__proto__", "constructor", "ticket_id ", "Type"])] = {"x": True}
        return orjson.dumps(command)

    def _foreign_ticket_id(self) -> bytes:
        command = open_ticket(self.standard).model_dump(mode="json")
        command["ticket_id"] = str(uuid4())
        return orjson.dumps(command)

    def _guidance_on_basic(self) -> c.Command:
        return open_ticket(self.basic, department="guidance")

    def _phone_on_basic(self) -> c.Command:
        return open_ticket(self.basic).model_copy(update={"channel": "phone"})

    def _never_opened(self) -> c.Command:
        return respond(uuid4(), T0)

    def _no_plan(self) -> c.Command:
        return open_ticket(unique("nobody"))

    def _opened_again(self) -> c.Command:
        if not self.opened:
            return self._never_opened()
        first = self.rng.choice(self.opened)
        return first.model_copy(update={"command_id": uuid4()})


BAD_WEIGHTS = {
    "truncated_json": 10, "not_json": 5, "binary_garbage": 8, "empty": 4, "not_an_object": 6,
    "array_of_commands": 3, "unknown_type": 8, "missing_field": 10, "wrong_type": 10, "naive_datetime": 6,
    "huge_string": 5, "oversized": 1, "deeply_nested": 2, "unicode": 8, "extra_field": 6, "foreign_ticket_id": 3,
    "guidance_on_basic": 2, "phone_on_basic": 2, "never_opened": 3, "no_plan": 2, "opened_again": 2,
}  # fmt: skip
NOT_JSON = [
    b"hello", b"{type: OpenTicket}", b"{'type': 'OpenTicket'}", b"<command/>", b"undefined", b'{"a":}',
    b"NaN", b"\x00", b"\n\t ", b'{"type":"OpenTicket",}', b"0x1F", b"--", "ticket ✉ ünïcode".encode(),
]  # fmt: skip
WRONG_VALUES = {
    "command_id": [12345, "not-a-uuid", None, [], "6f1c2b8e-7d4a-5e3b-9c1f", ""],
    "occurred_at": [True, "yesterday", "2026-13-45T99:00:00+01:00", None, {}, "2026-03-02T10:00:00+25:00"],
    "actor": [42, None, ["agent"], "", "has space", True],
}
ILLEGAL_NAMES = ["agënt", "zero\u200bwidth", "rtl\u202eevil", "emoji😀", "nul\x00byte", "ａｇｅｎｔ", "line\nbreak", ""]
LEGAL_SUBJECTS = [
    "The web shop answers 503", "Zahlung schlägt fehl – Ümlaute", "😀 emoji 🚀 and ZWJ 👩‍💻", "RTL \u202e text",
    "nul \x00 inside", "combining e\u0301\u0301\u0301", "x" * 2000, "中文 日本語 한국어", "\ufeffleading BOM char",
]  # fmt: skip


def test_every_bad_message_is_dead_lettered_as_it_came_and_every_good_one_applied(pipeline, kafka_bootstrap):
    rng = random.Random(20260302)
    intake = build_intake(pipeline, kafka_bootstrap)
    try:
        standard, basic = subscribed(pipeline, kafka_bootstrap, intake, "standard", "basic")
        hostile = Hostile(rng, standard, basic, pipeline.max_command_bytes)
        messages, expected_kinds, valid = [], {}, 0
        while len(expected_kinds) < BAD_MESSAGES:
            if rng.random() < 0.2:
                messages.append(as_message(hostile.valid()))
                valid += 1
                continue
            message, kind = hostile.bad()
            headers = [(INDEX, str(len(expected_kinds)).encode())]
            if rng.random() < 0.1:
                headers.append((DLQ_KIND, b"spoofed"))  # a publisher's dlq-* headers must not survive
            messages.append(RawMessage(message.key, message.value, [*message.headers, *headers]))
            expected_kinds[len(expected_kinds)] = (message.value, kind)
        publish_raw(kafka_bootstrap, pipeline.topics.commands, messages)
        drain(intake, until=lambda: handled(intake) == 2 + len(messages), max_seconds=120)
    finally:
        intake.close()

    refusals = sum(1 for _, kind in expected_kinds.values() if kind == "refused")
    assert (intake.stats.applied, intake.stats.unchanged) == (2 + valid, 0)
    assert (intake.stats.refused, intake.stats.invalid) == (refusals, BAD_MESSAGES - refusals)
    letters = read_all(kafka_bootstrap, pipeline.topics.commands_dlq, BAD_MESSAGES, timeout_s=60)
    assert len(letters) == topic_size(kafka_bootstrap, pipeline.topics.commands_dlq) == BAD_MESSAGES
    seen = set()
    for letter in letters:
        index = int(header(letter.headers, INDEX))
        value, kind = expected_kinds[index]
        seen.add(index)
        assert letter.value == value
        assert [k for k, _ in letter.headers].count(DLQ_KIND) == 1
        allowed = {kind} if kind else INVALID_KINDS
        assert header(letter.headers, DLQ_KIND) in allowed, (index, header(letter.headers, DLQ_REASON))
        assert header(letter.headers, DLQ_REASON)
    assert seen == set(expected_kinds)
    assert_applied(pipeline, hostile)


def assert_applied(settings: Settings, hostile: Hostile) -> None:
    """Every valid opening is a ticket whose stream holds exactly its own commands' events."""
    desk = build_desk(settings)
    try:
        for opening in hostile.opened:
            ticket = desk.ticket(opening.ticket_id)
            responses = hostile.responses[opening.ticket_id]
            assert ticket is not None, opening
            assert ticket.version == 1 + len(responses)
            assert ticket.seen_commands == {opening.command_id, *(r.command_id for r in responses)}
    finally:
        desk.close()


# --- 5. offsets committed only after the store has the result ---------------------------------------------

TICKETS = 20


def test_offsets_are_committed_after_the_store_has_the_batch(pipeline, kafka_bootstrap):
    intake = build_intake(pipeline, kafka_bootstrap)
    try:
        (customer,) = subscribed(pipeline, kafka_bootstrap, intake, "standard")
        openings = [open_ticket(customer, T0 + timedelta(minutes=n)) for n in range(TICKETS)]
        replies = [respond(o.ticket_id, o.occurred_at + timedelta(minutes=30)) for o in openings]
        publish(kafka_bootstrap, pipeline.topics.commands, [*openings, *replies])
        drain(intake, until=lambda: intake.stats.applied == 1 + 2 * TICKETS)
    finally:
        intake.close()
    stored = stored_log(pipeline)
    assert len(stored) == 1 + 2 * TICKETS
    assert committed(kafka_bootstrap, pipeline.intake_group, pipeline.topics.commands) == topic_size(
        kafka_bootstrap, pipeline.topics.commands
    )

    same_group = build_intake(pipeline, kafka_bootstrap)
    try:
        drain(same_group, until=lambda: caught_up(same_group))
        assert handled(same_group) == 0
    finally:
        same_group.close()

    new_group = build_intake(pipeline, kafka_bootstrap, group=unique("test-intake"))
    try:
        drain(new_group, until=lambda: handled(new_group) == 1 + 2 * TICKETS)
        assert (new_group.stats.applied, new_group.stats.unchanged) == (0, 1 + 2 * TICKETS)
    finally:
        new_group.close()
    assert [n.id for n in stored_log(pipeline)] == [n.id for n in stored]


def committed(bootstrap: str, group: str, topic: str) -> int:
    """The sum of the group's committed offsets over the topic's partitions."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return sum(consumer.committed(tp) or 0 for tp in partitions)
    finally:
        consumer.close(autocommit=False)


def caught_up(intake: Intake) -> bool:
    """The intake has its partitions and stands at the end of each of them."""
    assigned = intake.consumer.assignment()
    if not assigned:
        return False
    ends = intake.consumer.end_offsets(list(assigned))
    return all(intake.consumer.position(tp) == ends[tp] for tp in assigned)


# --- 6. a dead letter the broker refuses is not lost --------------------------------------------------------


def test_a_dead_letter_the_broker_refuses_stops_the_batch_before_its_offsets_are_committed(
    sqlite_settings, kafka_bootstrap
):
    pipeline = pipeline_settings(sqlite_settings, kafka_bootstrap)
    small_dlq = unique("test.small-dlq")
    settings = pipeline.model_copy(update={"topics": pipeline.topics.model_copy(update={"commands_dlq": small_dlq})})
    with closing(KafkaAdminClient(bootstrap_servers=kafka_bootstrap)) as admin:
        admin.create_topics({small_dlq: {"num_partitions": 1, "replication_factor": 1, "configs": SMALL}})
    try:
        publish_raw(kafka_bootstrap, settings.topics.commands, [RawMessage(b"k", b"not json " * 1000)])
        intake = build_intake(settings, kafka_bootstrap)
        try:
            with pytest.raises(KafkaError):
                drain(intake, until=lambda: handled(intake) == 1, max_seconds=30)
        finally:
            intake.close()
        assert committed(kafka_bootstrap, settings.intake_group, settings.topics.commands) == 0
    finally:
        delete_pipeline_topics(kafka_bootstrap, pipeline)
        delete_topic(kafka_bootstrap, small_dlq)


# The broker takes no record batch above 2 KB on this topic: every dead letter of 9 KB is refused.
SMALL = {"max.message.bytes": "2048"}


# --- 7. keys and sizes ----------------------------------------------------------------------------------


def test_a_command_under_the_wrong_key_is_dead_lettered_not_applied(sqlite_settings, kafka_bootstrap):
    pipeline = pipeline_settings(sqlite_settings, kafka_bootstrap)
    intake = build_intake(pipeline, kafka_bootstrap)
    try:
        (customer,) = subscribed(pipeline, kafka_bootstrap, intake, "standard")
        opening = open_ticket(customer)
        value = as_message(opening).value
        publish_raw(kafka_bootstrap, pipeline.topics.commands, [RawMessage(None, value), RawMessage(b"T-1", value)])
        drain(intake, until=lambda: handled(intake) == 3)
        letters = read_all(kafka_bootstrap, pipeline.topics.commands_dlq, expected_count=2)
        assert [header(r.headers, DLQ_KIND) for r in letters] == ["wrong-key", "wrong-key"]
        assert all(f"the key must be {opening.ticket_id}" in header(r.headers, DLQ_REASON) for r in letters)
        assert build_desk(pipeline).ticket(opening.ticket_id) is None
    finally:
        intake.close()
        delete_pipeline_topics(kafka_bootstrap, pipeline)


def test_a_message_near_the_broker_limit_is_dead_lettered_cut_to_size(sqlite_settings, kafka_bootstrap):
    pipeline = pipeline_settings(sqlite_settings, kafka_bootstrap)
    huge = b'{"type": "OpenTicket", "subject": "' + b"x" * 1_048_000 + b'"}'
    intake = build_intake(pipeline, kafka_bootstrap)
    try:
        publish_raw(kafka_bootstrap, pipeline.topics.commands, [RawMessage(b"k", huge)])
        drain(intake, until=lambda: handled(intake) == 1)
        [letter] = read_all(kafka_bootstrap, pipeline.topics.commands_dlq, expected_count=1)
        assert header(letter.headers, DLQ_KIND) == "oversized"
        assert header(letter.headers, DLQ_ORIGINAL_BYTES) == str(len(huge))
        assert letter.value == huge[: len(letter.value)] and len(letter.value) == 256 * 1024
    finally:
        intake.close()
        delete_pipeline_topics(kafka_bootstrap, pipeline)
