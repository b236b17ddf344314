"""Settings of the alerts consumer and the webhook forwarder, read from the environment (prefix NETTASK_ALERTS_)."""

from __future__ import annotations

import socket

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.retry import RetryPolicy


class AlertSettings(BaseSettings):
    """Consumer groups, the transactional id, and how the webhook forwarder reaches the incident tool."""

    model_config = SettingsConfigDict(env_prefix="NETTASK_ALERTS_", extra="ignore")

    group: str = "nettask-alerts"
    # Unset: one derived from the group, the events topic and the host. It must be stable across restarts (a new
    # producer with the same id aborts what a crashed one left open) and unique per running alerts process.
    transactional_id: str | None = None
    webhook_group: str = "nettask-alerts-webhook"
    # The incident tool's integration key (PagerDuty: the Events API v2 routing key).
    routing_key: SecretStr | None = None
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_attempts: int = Field(default=6, ge=1)
    webhook_first_delay_s: float = Field(default=0.5, gt=0)
    webhook_max_delay_s: float = Field(default=8.0, gt=0)

    def transactional_id_for(self, events_topic: str) -> str:
        return self.transactional_id or f"{self.group}:{events_topic}@{socket.gethostname()}"

    def webhook_retry(self) -> RetryPolicy:
        return RetryPolicy(self.webhook_attempts, self.webhook_first_delay_s, self.webhook_max_delay_s)
