"""The client other Python services use to publish commands on `tickets.commands`, validated before they leave.

Usage::

    from datetime import UTC, datetime
    from uuid import uuid4

    from domain.commands import OpenTicket, ticket_id_for
    from producers.client import CommandPublisher

    with CommandPublisher("localhost:19092") as publisher:  # leaving the block waits for every acknowledgement
        publisher.publish(OpenTicket(command_id=uuid4(), occurred_at=datetime.now(UTC), actor="portal",
            source="portal", reference="T-1001", customer_id="cust-42", department="trouble", severity="C",
            language="en", subject="The web shop answers 503"))
        publisher.publish({"type": "RecordResponse", "command_id": str(uuid4()), "actor": "agent.jane",
            "occurred_at": "2026-03-02T10:05:00+01:00", "ticket_id": str(ticket_id_for("portal", "T-1001"))})
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import NoError, TopicAuthorizationFailedError, UnknownTopicOrPartitionError, for_code
from kafka.producer.future import FutureRecordMetadata
from pydantic import ValidationError

from domain.commands import COMMAND_TYPES, AnyCommand, Command, parse_command
from domain.validation import validation_problems
from infra.messages import command_headers, command_value

DEFAULT_TOPIC = "tickets.commands"
PRODUCER_DEFAULTS: dict[str, Any] = {
    # A command is only sent once every in-sync replica has it: a lost command is a lost ticket.
    "acks": "all",
    # Asked for explicitly, so a conflicting acks, retries or in-flight setting raises instead of silently
    # turning idempotence off; with it, retries neither duplicate nor reorder a ticket's commands.
    "enable_idempotence": True,
    # Retries are unbounded in number and bounded in time: a send fails after two minutes without acknowledgement.
    "delivery_timeout_ms": 120_000,
    # A few milliseconds of batching; the design's end-to-end target is a p50 of 20 ms.
    "linger_ms": 5,
    # A mistyped topic name must fail, not create a topic nobody reads (many clusters auto-create by default).
    "allow_auto_create_topics": False,
}

Publishable = Command | dict | str | bytes


class InvalidCommand(ValueError):
    """A command that fails the contract; `reason` is one line, `field.path: message; ...`. Nothing was sent."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def validated(command: Publishable) -> AnyCommand:
    """The command of the contract: a model instance as it is, JSON text or a dict parsed; else InvalidCommand."""
    if isinstance(command, COMMAND_TYPES):
        return command
    if isinstance(command, Command):
        raise InvalidCommand(f"{type(command).__name__} is not a command of the contract")
    try:
        return parse_command(command)
    except ValidationError as error:
        raise InvalidCommand(validation_problems(error)) from None


class MissingTopic(LookupError):
    """The topic to publish to does not exist on the cluster (or this client may not see it); nothing was sent."""


class TopicNotAuthorized(MissingTopic):
    """The cluster does not let this principal see the topic (no Describe or Write ACL); nothing was sent."""


class CommandPublisher:
    """Publishes commands: key = ticket id (customer id for SubscribePlan), JSON value, contract headers.

    `producer_config` goes to KafkaProducer as it is; its connection arguments (security_protocol, sasl_*,
    ssl_*, as infra.kafka.clients.security_config gives them) also reach the admin client that checks, before
    anything is sent, that the topic exists: a producer would otherwise wait a minute for its metadata.
    """

    def __init__(self, bootstrap_servers: str, topic: str = DEFAULT_TOPIC, **producer_config: Any):
        self.topic = topic
        config = {**PRODUCER_DEFAULTS, **producer_config}
        self._producer = KafkaProducer(bootstrap_servers=bootstrap_servers, **config)
        try:
            _require_topic(bootstrap_servers, topic, config)
        except BaseException:
            self._producer.close(timeout=0)
            raise

    def publish(self, command: Publishable) -> FutureRecordMetadata:
        """Validate, then send; the future resolves to the record's partition and offset once acknowledged."""
        return self._send(validated(command))

    def publish_all(self, commands: Iterable[Publishable]) -> list[FutureRecordMetadata]:
        """Validate every command first, so one invalid command means that none is sent; then send in order."""
        return [self._send(command) for command in [validated(command) for command in commands]]

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every command sent so far is acknowledged (or has failed)."""
        self._producer.flush(timeout=timeout)

    def close(self, timeout: float | None = None) -> None:
        """Send what is pending, wait for it, and release the connections."""
        self._producer.close(timeout=timeout)

    def __enter__(self) -> CommandPublisher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _send(self, command: AnyCommand) -> FutureRecordMetadata:
        return self._producer.send(
            self.topic,
            key=command.key.encode("utf-8"),
            value=command_value(command),
            headers=command_headers(command),
        )


def _require_topic(bootstrap_servers: str, topic: str, config: dict[str, Any]) -> None:
    """Ask the cluster for the topic's metadata, without auto-creation; raise MissingTopic when it has none."""
    connection = {key: value for key, value in config.items() if key in KafkaAdminClient.DEFAULT_CONFIG}
    admin = KafkaAdminClient(**connection, bootstrap_servers=bootstrap_servers)
    try:
        (found,) = admin.describe_topics([topic])
    finally:
        admin.close()
    error = for_code(found["error_code"])
    if error is UnknownTopicOrPartitionError:
        raise MissingTopic(f"topic {topic} does not exist on {bootstrap_servers}")
    if error is TopicAuthorizationFailedError:
        raise TopicNotAuthorized(f"topic {topic} on {bootstrap_servers}: not authorized (check this principal's ACLs)")
    if error is not NoError:
        raise error(f"topic {topic} on {bootstrap_servers}")
