"""SASL against a broker of the test's own: SCRAM and PLAIN logins publish and read back; a wrong password fails."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from kafka.errors import KafkaTimeoutError

from domain.commands import parse_command
from infra.compose.components import build_intake, build_relay
from infra.kafka import broker, topics
from infra.kafka.clients import security_config
from infra.kafka.layout import SaslListener
from infra.messages import MESSAGE_TYPE, header
from infra.settings import Settings, TopicSettings
from producers.client import CommandPublisher
from tests.integration.helpers import drain, open_ticket, pipeline_settings, relay_everything, subscribe, unique

pytestmark = pytest.mark.kafka

USER, PASSWORD = "intake", "intake-secret"


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str]]:
    """A one-node broker on free ports and its own var dir, whose client listener takes SASL logins only."""
    port, controller_port, sasl_port = free_ports(3)
    settings = Settings(
        var_dir=tmp_path_factory.mktemp("sasl-kafka"), kafka_port=port, kafka_controller_port=controller_port
    )
    try:
        yield settings, broker.start(settings, sasl=SaslListener(sasl_port, ((USER, PASSWORD),)))
    finally:
        broker.stop(settings)


def client_settings(bootstrap: str, mechanism: str, password: str = PASSWORD) -> Settings:
    return Settings(
        kafka_bootstrap_servers=bootstrap, kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism=mechanism,
        kafka_sasl_username=USER, kafka_sasl_password=password,
    )  # fmt: skip


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
def test_with_the_right_password_topics_are_created_and_a_command_goes_there_and_back(sasl_broker, mechanism):
    _, bootstrap = sasl_broker
    security = security_config(client_settings(bootstrap, mechanism))
    prefix = f"test.{uuid.uuid4().hex[:8]}"
    wanted = TopicSettings(
        commands=f"{prefix}.commands", commands_dlq=f"{prefix}.commands.dlq", events=f"{prefix}.events",
        events_dlq=f"{prefix}.events.dlq", sla_alerts=f"{prefix}.sla-alerts", partitions=2,
    )  # fmt: skip
    command = open_ticket(unique("cust"))

    names = topics.ensure_topics(bootstrap, wanted, progress=lambda _line: None, security=security)
    with CommandPublisher(bootstrap, wanted.commands, **security) as publisher:
        sent = publisher.publish(command).get(timeout=30)
    (record,) = read_back(bootstrap, wanted.commands, security, expected=1)

    assert set(topics.describe(bootstrap, names, security=security)) == set(names)
    assert (record.partition, record.offset) == (sent.partition, sent.offset)
    assert parse_command(record.value) == command


def test_a_wrong_password_fails_in_one_line_naming_the_authentication_failure(sasl_broker):
    _, bootstrap = sasl_broker
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "NETTASK_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "NETTASK_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "NETTASK_KAFKA_SASL_USERNAME": USER,
        "NETTASK_KAFKA_SASL_PASSWORD": "not-the-password",
    }
    nettask = Path(sys.executable).with_name("nettask")
    commands = Path(__file__).resolve().parents[2] / "examples" / "march-2026.jsonl"

    # The timeout only guards against a hang: the command gives up by itself after its 10 s connect timeout.
    result = subprocess.run([nettask, "publish", commands], env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert f"cannot publish to tickets.commands on {bootstrap}" in errors[0]
    # The refused login is named when the broker answered within the client's 10 s; on a machine too busy for
    # that, the line names the timeout instead. Either way: one line, no traceback, exit 1.
    assert "SaslAuthenticationFailedError" in errors[0] or "Unable to bootstrap" in errors[0]
    assert "Traceback" not in result.stderr
    # The only other lines are the example file's one invalid command, reported before anything is sent.
    assert all(line.startswith(str(commands)) for line in result.stderr.splitlines() if line not in errors)


def test_a_wrong_password_never_gets_a_client_past_bootstrap(sasl_broker):
    _, bootstrap = sasl_broker
    security = security_config(client_settings(bootstrap, "PLAIN", password="not-the-password"))

    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        CommandPublisher(bootstrap, "tickets.commands", bootstrap_timeout_ms=3000, **security)


def test_the_brokers_state_is_owner_only(sasl_broker):
    settings, _ = sasl_broker
    kafka_dir = settings.var_dir / "kafka"
    node_dir = kafka_dir / "1-node" / "node-1"
    everything = [kafka_dir, *kafka_dir.rglob("*")]

    # server.properties holds the PLAIN users' passwords; data/ the SCRAM credentials and every record.
    assert {stat.S_IMODE(node_dir.joinpath(name).stat().st_mode) for name in ("data", "logs")} == {0o700}
    assert stat.S_IMODE((node_dir / "server.properties").stat().st_mode) == 0o600
    assert any(path.is_file() for path in (node_dir / "data").rglob("*"))
    readable_by_others = [str(path) for path in everything if path.stat().st_mode & 0o077]
    assert readable_by_others == []


def read_back(bootstrap: str, topic: str, security: dict, expected: int) -> list:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"test-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
        enable_auto_commit=False, **security,
    )  # fmt: skip
    records: list = []
    deadline = time.monotonic() + 30
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records += batch
    finally:
        consumer.close()
    return records


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on now, held open together so that they differ."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_intake_and_relay_work_over_scram(sasl_broker, sqlite_settings):
    _, bootstrap = sasl_broker
    secured = client_settings(bootstrap, "SCRAM-SHA-256")
    settings = pipeline_settings(sqlite_settings, bootstrap, security=security_config(secured)).model_copy(
        update={name: getattr(secured, name) for name in SECURITY_FIELDS}
    )
    customer = unique("cust")
    commands = [subscribe(customer), open_ticket(customer)]
    with CommandPublisher(bootstrap, settings.topics.commands, **security_config(settings)) as publisher:
        for sent in publisher.publish_all(commands):
            sent.get(timeout=30)

    with build_intake(settings, bootstrap) as intake:
        drain(intake, lambda: intake.stats.applied == 2)
    relay = build_relay(settings, bootstrap)
    try:
        published = relay_everything(relay)
    finally:
        relay.close()
    records = read_back(bootstrap, settings.topics.events, security_config(settings), expected=2)

    assert published == 2
    assert [header(r.headers, MESSAGE_TYPE) for r in records if r.key == customer.encode()] == ["PlanSubscribed"]
    assert "Opened" in {header(r.headers, MESSAGE_TYPE) for r in records}


SECURITY_FIELDS = ("kafka_security_protocol", "kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
