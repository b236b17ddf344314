"""The command client against the real broker: key, headers and value as the contract says, refusals, order."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from uuid import uuid4

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaConfigurationError

from domain.commands import OpenTicket, RecordResponse, parse_command, ticket_id_for
from infra.messages import MESSAGE_ID, MESSAGE_TYPE, SCHEMA
from producers.client import CommandPublisher, InvalidCommand

pytestmark = pytest.mark.kafka

T0 = datetime.fromisoformat("2026-03-02T10:00:00+01:00")


def open_ticket(reference: str) -> OpenTicket:
    return OpenTicket(
        command_id=uuid4(), occurred_at=T0, actor="portal", source="portal", reference=reference,
        customer_id="cust-42", department="trouble", severity="C", language="en", subject="The web shop answers 503",
    )  # fmt: skip


def response(reference: str, minute: int) -> dict:
    """A RecordResponse as another service would build it: a dict with JSON-ready values."""
    return {
        "type": "RecordResponse",
        "command_id": str(uuid4()),
        "occurred_at": (T0 + timedelta(minutes=minute)).isoformat(),
        "actor": "agent.test",
        "ticket_id": str(ticket_id_for("portal", reference)),
    }


def read_back(bootstrap: str, topic: str, group_id: str, expected: int) -> list[ConsumerRecord]:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group_id, auto_offset_reset="earliest", enable_auto_commit=False
    )
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + 30
    while len(records) < expected and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records += batch
    consumer.close()
    return records


def records_on(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    total = sum(consumer.end_offsets(partitions).values()) - sum(consumer.beginning_offsets(partitions).values())
    consumer.close()
    return total


def test_a_published_command_arrives_keyed_by_ticket_with_contract_headers_and_json(
    kafka_bootstrap, topic_name, group_id
):
    command = open_ticket(f"T-{uuid4().hex[:8]}")
    with CommandPublisher(kafka_bootstrap, topic=topic_name) as publisher:
        metadata = publisher.publish(command).get(timeout=30)

    (record,) = read_back(kafka_bootstrap, topic_name, group_id, expected=1)

    assert (record.partition, record.offset) == (metadata.partition, metadata.offset)
    assert record.key.decode() == str(command.ticket_id) == str(ticket_id_for("portal", command.reference))
    assert dict(record.headers) == {
        MESSAGE_TYPE: b"OpenTicket",
        SCHEMA: b"1",
        MESSAGE_ID: str(command.command_id).encode(),
    }
    assert parse_command(record.value) == command


def test_dicts_and_json_text_are_validated_and_published_like_models(kafka_bootstrap, topic_name, group_id):
    as_dict = response("T-1", minute=1)
    as_text = response("T-1", minute=2)
    with CommandPublisher(kafka_bootstrap, topic=topic_name) as publisher:
        publisher.publish(as_dict)
        publisher.publish(json.dumps(as_text).encode())

    records = read_back(kafka_bootstrap, topic_name, group_id, expected=2)

    assert [parse_command(r.value) for r in records] == [parse_command(as_dict), parse_command(as_text)]
    assert all(isinstance(parse_command(r.value), RecordResponse) for r in records)


def test_an_invalid_command_raises_with_the_reason_and_nothing_is_sent(kafka_bootstrap, topic_name):
    naive = {**response("T-2", minute=1), "occurred_at": "2026-03-02T10:01:00"}
    with CommandPublisher(kafka_bootstrap, topic=topic_name) as publisher:
        with pytest.raises(InvalidCommand, match=r"occurred_at: must be an RFC 3339"):
            publisher.publish(naive)
        with pytest.raises(InvalidCommand, match="json: Invalid JSON"):
            publisher.publish(b"{not json")
        with pytest.raises(InvalidCommand, match="RecordResponse.occurred_at"):
            publisher.publish_all([response("T-2", minute=2), naive])
        publisher.flush(timeout=30)

    assert records_on(kafka_bootstrap, topic_name) == 0


def test_one_tickets_commands_keep_their_order_on_one_partition(kafka_bootstrap, topic_name, group_id):
    references = [f"T-{uuid4().hex[:8]}" for _ in range(4)]
    sent = [open_ticket(r) for r in references]
    sent += [parse_command(response(r, minute)) for minute in range(1, 11) for r in references]
    with CommandPublisher(kafka_bootstrap, topic=topic_name) as publisher:
        publisher.publish_all(sent)

    records = read_back(kafka_bootstrap, topic_name, group_id, expected=len(sent))

    assert len(records) == len(sent)
    for reference in references:
        ticket = str(ticket_id_for("portal", reference))
        mine = [r for r in records if r.key.decode() == ticket]
        assert len({r.partition for r in mine}) == 1
        in_offset_order = [parse_command(r.value) for r in sorted(mine, key=lambda r: r.offset)]
        assert in_offset_order == [c for c in sent if str(c.ticket_id) == ticket]


def test_a_setting_that_would_turn_idempotence_off_is_refused(kafka_bootstrap):
    with pytest.raises(KafkaConfigurationError, match="enable_idempotence"):
        CommandPublisher(kafka_bootstrap, acks=1)
