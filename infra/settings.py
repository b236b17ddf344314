"""Settings of every component, read from the environment (prefix NETTASK_) with sensible local defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.retry import RetryPolicy


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
    # Seconds to wait for a database connection (the library waits 30 s): an unreachable server is reported,
    # not waited on for minutes. The library tries a failed call up to 10 times, each waiting this long.
    postgres_connect_timeout_s: int = Field(default=3, ge=1)
    # Unset: the project's own local broker (infra/kafka) is used.
    kafka_bootstrap_servers: str | None = Field(default=None, validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    topics: TopicSettings = Field(default_factory=TopicSettings)
    intake_group: str = "nettask-intake"
    # Commands are small JSON documents; anything far larger is a mistake or an attack, not a command.
    max_command_bytes: int = Field(default=64 * 1024, ge=1024)
    intake_batch: int = Field(default=500, ge=1)
    relay_name: str = "relay:tickets.events"
    relay_page: int = Field(default=1000, ge=1)
    # How long an idle relay waits before it looks at the store again (ms): caps the latency it adds.
    idle_wait_ms: int = Field(default=5, ge=1)
    # A store read or broker send that fails is tried this often in all, waiting first_delay, doubling up to
    # max_delay, before the component gives up: rides out a restart of the database or the broker.
    retry_attempts: int = Field(default=6, ge=1)
    retry_first_delay_s: float = Field(default=0.5, gt=0)
    retry_max_delay_s: float = Field(default=8.0, gt=0)
    # `nettask run` rebuilds a failed component, but after more than this many restarts within the window it
    # stops everything and exits non-zero, so that the service manager sees the failure.
    restart_limit: int = Field(default=3, ge=0)
    restart_window_s: float = Field(default=600.0, gt=0)

    def postgres_dsn(self) -> str:
        """A libpq connection string for the configured PostgreSQL database."""
        return (
            f"host={self.postgres_host} port={self.postgres_port} dbname={self.postgres_dbname} "
            f"user={self.postgres_user} password={self.postgres_password}"
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retry_attempts, self.retry_first_delay_s, self.retry_max_delay_s)

    def sqlite_file(self) -> Path:
        return self.sqlite_path or self.var_dir / "events.sqlite"
