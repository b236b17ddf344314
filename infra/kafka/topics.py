"""Topic admin: the engine's topics, created idempotently with the partitions of the settings."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

from kafka import KafkaAdminClient
from kafka.errors import NoError, TopicAlreadyExistsError, for_code

from infra.settings import TopicSettings

# Refused commands and unappliable events wait for an operator, who may be away for a long weekend or a holiday.
DLQ_RETENTION_MS = 30 * 24 * 3600 * 1000

Progress = Callable[[str], None]
# The cluster's security arguments, as infra.kafka.clients.security_config gives them; None for PLAINTEXT.
Security = Mapping[str, Any] | None
log = logging.getLogger(__name__)


class TopicError(RuntimeError):
    """The broker refused to create a topic, for a reason other than that it exists already."""


def topic_specs(topic_settings: TopicSettings) -> dict[str, dict[str, Any]]:
    """Partitions, replication and configs of each topic, in the form KafkaAdminClient.create_topics takes."""
    partitions, replication = topic_settings.partitions, topic_settings.replication_factor
    specs = {
        name: _spec(partitions, replication)
        for name in (
            topic_settings.commands,
            topic_settings.commands_dlq,
            topic_settings.events,
            topic_settings.events_dlq,
            topic_settings.sla_alerts,
        )
    }
    for dlq in (topic_settings.commands_dlq, topic_settings.events_dlq):
        specs[dlq]["configs"]["retention.ms"] = str(DLQ_RETENTION_MS)
    return specs


def ensure_topics(
    bootstrap: str, topic_settings: TopicSettings, *, progress: Progress | None = None, security: Security = None
) -> list[str]:
    """Create whichever of the engine's topics is missing; return all their names, in settings order."""
    say = progress or log.info
    specs = topic_specs(topic_settings)
    created = _create(bootstrap, specs, security)
    for name in specs:
        say(f"{name}: {'created' if name in created else 'exists'}")
    return list(specs)


def create_topic(
    bootstrap: str, name: str, partitions: int, replication: int = 1, *, security: Security = None
) -> None:
    """Create one topic (tests use random names); an existing topic of that name is left as it is."""
    _create(bootstrap, {name: _spec(partitions, replication)}, security)


def delete_topic(bootstrap: str, name: str, *, security: Security = None) -> None:
    """Delete one topic, e.g. a test's random topic; a topic that does not exist is no error."""
    with _admin(bootstrap, security) as admin:
        admin.delete_topics([name], raise_errors=False)


class TopicLayout(NamedTuple):
    """How a topic exists on the broker."""

    partitions: int
    replication: int


def describe(bootstrap: str, names: list[str], *, security: Security = None) -> dict[str, TopicLayout]:
    """Partitions and replication of each of the named topics that exists; missing ones are left out."""
    with _admin(bootstrap, security) as admin:
        found = [topic for topic in admin.describe_topics(names) if topic["error_code"] == 0]
    return {topic["name"]: _layout(topic["partitions"]) for topic in found}


def _layout(partitions: list[dict[str, Any]]) -> TopicLayout:
    return TopicLayout(len(partitions), max((len(p["replica_nodes"]) for p in partitions), default=0))


def _spec(partitions: int, replication: int) -> dict[str, Any]:
    # With three replicas an acknowledged write survives one broker lost; fewer cannot demand two copies.
    min_insync = 2 if replication >= 3 else 1
    return {
        "num_partitions": partitions,
        "replication_factor": replication,
        "configs": {"min.insync.replicas": str(min_insync)},
    }


def _create(bootstrap: str, specs: dict[str, dict[str, Any]], security: Security) -> list[str]:
    """Create the topics, wait until each new one has leaders, and return the names that were new."""
    with _admin(bootstrap, security) as admin:
        response = admin.create_topics(specs, raise_errors=False)
        created, failures = [], []
        for topic in response["topics"]:
            error = for_code(topic["error_code"])
            if error is NoError:
                created.append(topic["name"])
            elif error is not TopicAlreadyExistsError:
                failures.append(f"{topic['name']}: {error.__name__} {topic['error_message'] or ''}".strip())
        if failures:
            raise TopicError("could not create " + "; ".join(failures))
        # A created topic has no leaders yet for a moment; producing then would fail on the first send.
        admin.wait_for_topics(created)
    return created


@contextmanager
def _admin(bootstrap: str, security: Security) -> Iterator[KafkaAdminClient]:
    # A cluster that has not answered in 8 s (the client waits 30 s by default) is down, and the operator should
    # hear so while still looking at the terminal.
    admin = KafkaAdminClient(
        **(security or {}), bootstrap_servers=bootstrap, client_id="nettask-topics", bootstrap_timeout_ms=8000
    )
    try:
        yield admin
    finally:
        admin.close()
