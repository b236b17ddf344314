"""Settings of every component, read from the environment (prefix NETTASK_) with sensible local defaults."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.commands import DEFAULT_INSTANTS, InstantRange
from infra.retry import RetryPolicy

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class TopicSettings(BaseSettings):
    """Names and partition counts of the engine's topics."""

    model_config = SettingsConfigDict(env_prefix="NETTASK_TOPIC_", extra="ignore")

    commands: str = "tickets.commands"
    commands_dlq: str = "tickets.commands.dlq"
    events: str = "tickets.events"
    events_dlq: str = "tickets.events.dlq"
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
    # How every client of the project authenticates to the cluster and encrypts its traffic (docs/security.md).
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_check_hostname: bool = True
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
    # The projections: their own database (by default next to the event store, of the same kind) and group.
    projections_store: str | None = Field(default=None, pattern="^(sqlite|postgres)$")
    projections_sqlite_path: Path | None = None
    projections_postgres_schema: str | None = None
    projector_group: str = "nettask-projector"
    # Processes that fill a rebuild's fresh tables, each folding its share of the tickets (views whose tickets
    # are independent: the SLA view); unset: one per CPU. `nettask projections rebuild --workers N` overrides it.
    rebuild_workers: int | None = Field(default=None, ge=1)
    # Records per poll, and so per transaction: under a backlog kafka-python fills polls this big from what it
    # fetched, so the work per batch (offsets, billing's statements) is shared by many events; a projector that
    # keeps up gets smaller polls, as soon as records arrive.
    projector_batch: int = Field(default=5000, ge=1)
    # How often the billing statements of the customers batches touched are rewritten from the stored fold (ms):
    # batches store the fold and mark its customers, a refresh does the marked statements. Statements follow the
    # events by at most this much (and at once when the projector is idle or closes).
    billing_refresh_ms: int = Field(default=500, ge=0)
    # How often the watchdog looks at the SLA view and the calendar for passed deadlines and months to close.
    watchdog_interval_s: float = Field(default=5.0, gt=0)
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
    # When set, every request to the HTTP read API (`nettask api`) must carry `Authorization: Bearer <token>`.
    api_token: SecretStr | None = None

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> Settings:
        """Refuse half a configuration: a client that silently fell back to less security would still run."""
        protocol = self.kafka_security_protocol
        sasl = {
            "NETTASK_KAFKA_SASL_MECHANISM": self.kafka_sasl_mechanism,
            "NETTASK_KAFKA_SASL_USERNAME": self.kafka_sasl_username,
            "NETTASK_KAFKA_SASL_PASSWORD": self.kafka_sasl_password,
        }
        ssl = {
            "NETTASK_KAFKA_SSL_CAFILE": self.kafka_ssl_cafile,
            "NETTASK_KAFKA_SSL_CERTFILE": self.kafka_ssl_certfile,
            "NETTASK_KAFKA_SSL_KEYFILE": self.kafka_ssl_keyfile,
        }
        if protocol.startswith("SASL_"):
            missing = [name for name, value in sasl.items() if not value]
            if missing:
                raise ValueError(f"NETTASK_KAFKA_SECURITY_PROTOCOL={protocol} needs {', '.join(missing)}")
        elif given := [name for name, value in sasl.items() if value]:
            raise ValueError(f"{', '.join(given)} set, but NETTASK_KAFKA_SECURITY_PROTOCOL={protocol} uses no SASL")
        if not protocol.endswith("SSL") and (given := [name for name, value in ssl.items() if value]):
            raise ValueError(f"{', '.join(given)} set, but NETTASK_KAFKA_SECURITY_PROTOCOL={protocol} uses no TLS")
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("NETTASK_KAFKA_SSL_CERTFILE and NETTASK_KAFKA_SSL_KEYFILE go together")
        for name, path in ssl.items():
            if path is not None and not path.is_file():
                raise ValueError(f"{name}={path}: no such file")
        return self

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

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retry_attempts, self.retry_first_delay_s, self.retry_max_delay_s)

    def sqlite_file(self) -> Path:
        return self.sqlite_path or self.var_dir / "events.sqlite"

    def projections_backend(self) -> str:
        """Where the projection tables live: NETTASK_PROJECTIONS_STORE, else the event store's kind."""
        return self.projections_store or self.store

    def projections_sqlite_file(self) -> Path:
        return self.projections_sqlite_path or self.sqlite_file().parent / "projections.sqlite"

    def projections_schema(self) -> str:
        return self.projections_postgres_schema or self.postgres_schema
