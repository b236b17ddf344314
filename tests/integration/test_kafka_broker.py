"""The project's Kafka broker for real: a round trip, idempotent topic creation, status and repeated starts."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer

from infra.kafka import broker, topics
from infra.kafka.bootstrap import bootstrap_servers
from infra.settings import Settings, TopicSettings

pytestmark = pytest.mark.kafka


def test_records_produced_are_consumed_back_in_key_order(kafka_bootstrap, topic_name, group_id):
    sent = [(f"ticket-{i % 5}", f"event-{i}") for i in range(50)]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for key, value in sent:
        producer.send(topic_name, key=key.encode(), value=value.encode())
    producer.flush(timeout=30)
    producer.close()

    received = consume(kafka_bootstrap, topic_name, group_id, expected=len(sent))

    assert sorted(received) == sorted(sent)
    for key in {key for key, _ in sent}:
        assert [v for k, v in received if k == key] == [v for k, v in sent if k == key]


def test_ensure_topics_twice_gives_the_same_topics_with_the_configured_partitions(kafka_bootstrap):
    prefix = f"test.{uuid.uuid4().hex[:8]}"
    wanted = TopicSettings(
        commands=f"{prefix}.commands", commands_dlq=f"{prefix}.commands.dlq", events=f"{prefix}.events",
        events_dlq=f"{prefix}.events.dlq", sla_alerts=f"{prefix}.sla-alerts", partitions=4, replication_factor=1,
    )  # fmt: skip
    try:
        first = topics.ensure_topics(kafka_bootstrap, wanted)
        second = topics.ensure_topics(kafka_bootstrap, wanted)

        names = [wanted.commands, wanted.commands_dlq, wanted.events, wanted.events_dlq, wanted.sla_alerts]
        assert first == second == names
        layouts = topics.describe(kafka_bootstrap, first)
        assert layouts == {name: topics.TopicLayout(partitions=4, replication=1) for name in first}
    finally:
        for name in topics.topic_specs(wanted):
            topics.delete_topic(kafka_bootstrap, name)


def test_status_reports_the_running_broker(local_kafka_settings, kafka_bootstrap):
    status = broker.status(local_kafka_settings)

    assert status.running
    assert status.bootstrap_servers == kafka_bootstrap
    assert all(node.alive and node.answering and not node.stale for node in status.nodes)


def test_starting_again_returns_the_same_address_without_a_second_process(local_kafka_settings, kafka_bootstrap):
    pids = [node.pid for node in broker.status(local_kafka_settings).nodes]

    assert broker.start(local_kafka_settings) == kafka_bootstrap
    assert bootstrap_servers(local_kafka_settings) == kafka_bootstrap

    assert [node.pid for node in broker.status(local_kafka_settings).nodes] == pids
    data_dir = str(local_kafka_settings.var_dir / "kafka")
    assert len([pid for pid in broker_pids() if data_dir in command_line(pid)]) == len(pids)


def test_a_pid_file_left_by_a_crash_is_reported_stale_and_removed_by_stop(tmp_path):
    settings = Settings(var_dir=tmp_path, kafka_port=29192, kafka_controller_port=29193)
    pid_file = tmp_path / "kafka" / "1-node" / "node-1" / "kafka.pid"
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(f"{exited_pid()}\n")

    status = broker.status(settings)
    assert not status.running
    assert status.stale_nodes == (1,)

    broker.stop(settings)
    assert not pid_file.exists()
    assert broker.status(settings).nodes == ()


def consume(bootstrap: str, topic: str, group_id: str, expected: int) -> list[tuple[str, str]]:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group_id, auto_offset_reset="earliest",
        enable_auto_commit=False,
    )  # fmt: skip
    received: list[tuple[str, str]] = []
    deadline = time.monotonic() + 30
    while len(received) < expected and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            received += [(r.key.decode(), r.value.decode()) for r in records]
    consumer.close()
    return received


def exited_pid() -> int:
    """The pid of a process that has come and gone, as a crashed broker's would be."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def broker_pids() -> list[int]:
    return [
        int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and "kafka.Kafka" in command_line(int(p.name))
    ]


def command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
