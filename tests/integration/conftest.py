"""Integration fixtures: a real Kafka broker for the session, and a random topic and consumer group per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.kafka import broker, topics
from infra.settings import Settings
from tests.integration.private_services import PrivateKafka, PrivatePostgres

ROOT = Path(__file__).resolve().parents[2]
# Its own state and ports, so a test run never touches the broker a developer runs on the default ports.
# It is left running after the session: the next session finds it and starts in no time.
TEST_BROKER = {"var_dir": ROOT / "var" / "test-kafka", "kafka_port": 29092, "kafka_controller_port": 29093}


def settings_of_test_broker() -> Settings:
    return Settings(**TEST_BROKER)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """KAFKA_BOOTSTRAP_SERVERS when set, else the project's own test broker; fails, never skips, without one."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    try:
        address = broker.start(settings_of_test_broker())
    except broker.BrokerError as error:
        failure = error
    else:
        yield address
        return
    if not _docker_answers():
        pytest.fail(f"Kafka is required and the local broker could not start: {failure}", pytrace=False)
    yield from _kafka_container()


@pytest.fixture(scope="session")
def local_kafka_settings(kafka_bootstrap: str) -> Settings:
    """Settings of the test broker, for tests of the local broker itself; not in use with an outside cluster."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.skip("KAFKA_BOOTSTRAP_SERVERS names an outside cluster, so the local broker is not in use")
    settings = settings_of_test_broker()
    if broker.status(settings).bootstrap_servers != kafka_bootstrap:
        pytest.skip("the session uses a Kafka container, not the local broker")
    return settings


@pytest.fixture
def topic_name(kafka_bootstrap: str) -> Iterator[str]:
    """A topic of its own for one test, with 3 partitions, deleted afterwards."""
    name = f"test.{uuid.uuid4().hex[:12]}"
    topics.create_topic(kafka_bootstrap, name, partitions=3)
    yield name
    topics.delete_topic(kafka_bootstrap, name)


@pytest.fixture
def group_id() -> str:
    """A consumer group of its own, so no test inherits another's committed offsets."""
    return f"test-group-{uuid.uuid4().hex[:12]}"


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    result = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    return result.returncode == 0


def _kafka_container() -> Iterator[str]:
    """Fallback where Java or Maven is missing but a Docker engine answers."""
    from testcontainers.community.kafka import KafkaContainer

    with KafkaContainer().with_kraft() as container:
        yield container.get_bootstrap_server()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of the test's own, free to stop and start; removed afterwards."""
    cluster = PrivatePostgres()
    try:
        yield cluster.create()
    finally:
        cluster.remove()


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[PrivateKafka]:
    """A Kafka broker of the test's own (not the shared test broker), free to stop and start; stopped afterwards."""
    node = PrivateKafka(tmp_path / "private-kafka")
    node.start()
    try:
        yield node
    finally:
        node.stop()
