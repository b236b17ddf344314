"""What the bench creates and removes again: the broker (if none is given), random topics, fresh stores."""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import ExitStack
from pathlib import Path

import psycopg

from infra.kafka import broker, topics
from infra.settings import Settings, TopicSettings

ROOT = Path(__file__).resolve().parents[1]
# Its own state and ports: never the developer's broker (19092) nor the test broker (29092).
BENCH_BROKER = {"var_dir": ROOT / "var" / "bench-kafka", "kafka_port": 39192, "kafka_controller_port": 39193}


class StoreUnavailable(RuntimeError):
    """The store cannot be reached, so its rows of the bench are left out."""


class Resources:
    """Registers every broker, topic, schema and file it makes on `stack`, so all goes whatever happens."""

    def __init__(self, stack: ExitStack, say):
        self.stack = stack
        self.say = say
        self.run = uuid.uuid4().hex[:8]
        self.run_dir = ROOT / "var" / f"bench-{self.run}"
        self.run_dir.mkdir(parents=True)
        stack.callback(shutil.rmtree, self.run_dir, ignore_errors=True)

    def bootstrap(self) -> tuple[str, str]:
        """The broker's address and where it came from; a broker the bench starts is stopped at the end."""
        if external := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            return external, "KAFKA_BOOTSTRAP_SERVERS"
        settings = Settings(**BENCH_BROKER)
        if broker.status(settings).running:
            return broker.start(settings), f"bench broker already running ({settings.var_dir})"
        # The broker's state is the bench's alone: its deleted topics would stay on disk until the next start.
        self.stack.callback(shutil.rmtree, settings.var_dir, ignore_errors=True)
        address = broker.start(settings, progress=self.say)
        self.stack.callback(broker.stop, settings, progress=self.say)
        return address, f"bench broker started for this run ({settings.var_dir})"

    def topic(self, bootstrap: str, role: str, partitions: int) -> str:
        name = f"bench.{self.run}.{role}"
        topics.create_topic(bootstrap, name, partitions)
        self.stack.callback(topics.delete_topic, bootstrap, name)
        return name

    def topic_settings(self, bootstrap: str, label: str, partitions: int) -> TopicSettings:
        """Commands, dead letters and events topics of their own; alerts are never written here."""
        return TopicSettings(
            commands=self.topic(bootstrap, f"{label}.commands", partitions),
            commands_dlq=self.topic(bootstrap, f"{label}.dlq", partitions),
            events=self.topic(bootstrap, f"{label}.events", partitions),
            sla_alerts=f"bench.{self.run}.{label}.unused-alerts",
            partitions=partitions,
        )

    def store(self, kind: str, label: str, **overrides) -> Settings:
        """Settings of a fresh store: a new SQLite file, or a new PostgreSQL schema dropped at the end."""
        if kind == "sqlite":
            return Settings(
                store="sqlite", sqlite_path=self.run_dir / f"{label}.sqlite", var_dir=self.run_dir, **overrides
            )
        settings = Settings(store="postgres", postgres_schema=f"bench_{self.run}_{label}", **overrides)
        self._create_schema(settings)
        return settings

    def _create_schema(self, settings: Settings) -> None:
        dsn = settings.postgres_dsn()
        try:
            connection = psycopg.connect(dsn, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as error:
            raise StoreUnavailable(f"PostgreSQL unreachable (run infra/scripts/postgres-up.sh): {error}") from error
        schema = settings.postgres_schema
        connection.execute(f'CREATE SCHEMA "{schema}"')
        self.stack.callback(_drop_schema, connection, schema)


def _drop_schema(connection: psycopg.Connection, schema: str) -> None:
    with connection:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
