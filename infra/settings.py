"""Settings of every component, read from the environment (prefix NETTASK_) with sensible local defaults."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

from pydantic import AwareDatetime, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.commands import DEFAULT_INSTANTS, InstantRange


class TopicSettings(BaseSettings):
    """Names and partition counts of the topics of DESIGN.md."""

    model_config = SettingsConfigDict(env_prefix="NETTASK_TOPIC_", extra="ignore")

    commands: str = "tickets.commands"
    commands_dlq: str = "tickets.commands.dlq"
    events: str = "tickets.events"
    sla_alerts: str = "tickets.sla-alerts"
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)


class Settings(BaseSettings):
    """Where state lives and how to reach the broker and the database."""

    model_config = SettingsConfigDict(env_prefix="NETTASK_", extra="ignore")

    var_dir: Path = Path("var")
    policy_file: Path | None = None
    # "sqlite" (embedded, default) or "postgres".
    store: str = Field(default="sqlite", pattern="^(sqlite|postgres)$")
    sqlite_path: Path | None = None
    postgres_dbname: str = "nettask"
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_user: str = "nettask"
    postgres_password: str = "nettask"
    postgres_schema: str = "public"
    # Unset: the project's own local broker (infra/kafka) is used.
    kafka_bootstrap_servers: str | None = Field(default=None, validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    topics: TopicSettings = Field(default_factory=TopicSettings)
    intake_group: str = "nettask-intake"
    # Commands are small JSON documents; anything far larger is a mistake or an attack, not a command.
    max_command_bytes: int = Field(default=64 * 1024, ge=1024)
    intake_batch: int = Field(default=500, ge=1)
    # Instants a command may name; anything outside is dead-lettered as invalid input.
    earliest_instant: AwareDatetime = DEFAULT_INSTANTS.earliest
    latest_instant: AwareDatetime = DEFAULT_INSTANTS.latest
    # How long a command may wait for the plan or the opening it needs (published on another partition, or
    # later) before it is refused for good; seconds.
    park_max_seconds: float = Field(default=300.0, ge=0)
    # A compressed record batch may inflate to at most this much; larger ones are dead-lettered unread.
    max_batch_bytes: int = Field(default=16 * 1024 * 1024, ge=1024 * 1024)
    relay_name: str = "relay:tickets.events"
    relay_page: int = Field(default=1000, ge=1)
    # How long an idle relay waits before it looks at the store again (ms): caps the latency it adds.
    idle_wait_ms: int = Field(default=5, ge=1)

    @model_validator(mode="after")
    def _instants_in_order(self) -> Settings:
        if self.earliest_instant >= self.latest_instant:
            raise ValueError("NETTASK_EARLIEST_INSTANT must come before NETTASK_LATEST_INSTANT")
        return self

    def accepted_instants(self) -> InstantRange:
        return InstantRange(self.earliest_instant.astimezone(UTC), self.latest_instant.astimezone(UTC))

    def postgres_dsn(self) -> str:
        """A libpq connection string for the configured PostgreSQL database."""
        return (
            f"host={self.postgres_host} port={self.postgres_port} dbname={self.postgres_dbname} "
            f"user={self.postgres_user} password={self.postgres_password}"
        )

    def sqlite_file(self) -> Path:
        return self.sqlite_path or self.var_dir / "events.sqlite"
