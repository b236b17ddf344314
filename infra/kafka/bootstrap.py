"""Where the Kafka cluster is: the one named by KAFKA_BOOTSTRAP_SERVERS, else the project's local broker."""

from __future__ import annotations

from infra.kafka import broker
from infra.settings import Settings


def bootstrap_servers(settings: Settings, *, progress: broker.Progress | None = None) -> str:
    """The configured cluster's bootstrap servers, or the local broker's after starting it if it is down."""
    if settings.kafka_bootstrap_servers:
        return settings.kafka_bootstrap_servers
    # Whichever local cluster runs (one node or three) will do; only when none runs is one started.
    current = broker.status(settings)
    if current.running and current.bootstrap_servers:
        return current.bootstrap_servers
    return broker.start(settings, progress=progress)
