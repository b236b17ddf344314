"""The webhook forwarder: alerts POSTed as PagerDuty Events API v2 events, each offset committed after a 2xx."""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from consumers.idle_watch import IdleWatch
from consumers.sla_alert import AlertKind, SlaAlert
from domain.policy import Severity
from domain.validation import validation_problems
from infra.retry import RetryPolicy, retry

log = logging.getLogger(__name__)
POLL_MS = 500
# PagerDuty's severities; an alert whose ticket opening is unknown is neither played down nor up.
PAGERDUTY_SEVERITY = {Severity.A: "critical", Severity.B: "error", Severity.C: "warning"}
UNKNOWN_SEVERITY = "error"
# PagerDuty refuses a summary longer than this.
SUMMARY_MAX = 1024
Post = Callable[[dict], None]


class DeliveryFailed(Exception):
    """The incident tool answered, but not with a 2xx."""


@dataclass
class WebhookStats:
    delivered: int = 0
    skipped: int = 0


def pagerduty_event(alert: SlaAlert, routing_key: str) -> dict[str, Any]:
    """The alert as a PagerDuty Events API v2 trigger; the alert id is the dedup key, so repeats merge."""
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": str(alert.alert_id),
        "payload": {
            "summary": summary(alert)[:SUMMARY_MAX],
            "source": "nettask",
            "severity": PAGERDUTY_SEVERITY.get(alert.severity, UNKNOWN_SEVERITY),  # type: ignore[arg-type]
            "timestamp": alert.noticed_at.isoformat(),
            "component": alert.metric,
            "group": alert.customer_id,
            "class": f"sla_{alert.kind}",
            "custom_details": alert.model_dump(mode="json"),
        },
    }


def summary(alert: SlaAlert) -> str:
    """One line for a human: what, which ticket, whose, how bad, how late or how soon."""
    ticket = alert.reference or str(alert.ticket_id)
    who = f"{alert.customer_id}, {alert.plan or 'plan unknown'}, severity {alert.severity or 'unknown'}"
    if alert.kind is AlertKind.BREACH:
        return f"SLA breach: {alert.metric} of ticket {ticket} ({who}) was due {alert.due_at.isoformat()}, " \
               f"{alert.minutes_late} min late"  # fmt: skip
    return f"SLA at risk: {alert.metric} of ticket {ticket} ({who}) is due {alert.due_at.isoformat()}, " \
           f"{alert.minutes_left} min left"  # fmt: skip


def json_poster(url: str, timeout_s: float) -> Post:
    """POSTs a JSON body to `url`; raises DeliveryFailed on an answer that is not 2xx, OSError when unreachable."""

    def post(body: dict) -> None:
        request = urllib.request.Request(
            url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (the operator's URL)
                status = response.status
        except urllib.error.HTTPError as error:
            raise DeliveryFailed(f"{url} answered {error.code} {error.reason}") from None
        if not 200 <= status < 300:
            raise DeliveryFailed(f"{url} answered {status}")

    return post


class WebhookForwarder:
    """Reads committed alerts in its own group and delivers each, at least once, in partition order.

    It receives `consumers`, which builds its consumer (subscribed to the alerts topic, read_committed,
    auto-commit off; called again when the consumer must rejoin afresh), and `post`.
    """

    def __init__(
        self, consumers: Callable[[], Any], post: Post, routing_key: str, policy: RetryPolicy, target: str = "webhook"
    ):
        self.consumers = consumers
        self.consumer = consumers()
        self.idle = IdleWatch()
        self.post = post
        self.routing_key = routing_key
        self.policy = policy
        self.target = target
        self.stop: Callable[[], bool] = lambda: False
        self.stats = WebhookStats()

    def __enter__(self) -> WebhookForwarder:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def run(self, *, stop: Callable[[], bool] = lambda: False, max_seconds: float | None = None) -> WebhookStats:
        """Deliver until `stop()` or `max_seconds`; raises `Unavailable` when one alert fails every attempt."""
        self.stop = stop
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        while not stop() and (deadline is None or time.monotonic() < deadline):
            self.process_once()
            if self.idle.stuck(bool(self.consumer.assignment())):
                self._rejoin()
        return self.stats

    def _rejoin(self) -> None:
        """Leave the group and join again with a new consumer; each delivered alert's offset is committed already."""
        log.warning("webhook: no partition held for %.0f s: rejoining the group with a new consumer", self.idle.after)
        self.consumer.close()
        self.consumer = self.consumers()

    def process_once(self, timeout_ms: int = POLL_MS) -> int:
        """One poll batch, record by record, in three steps; returns how many alerts it delivered.

        1. Read the alert (one that is not a valid alert is logged and passed over).
        2. POST it, tried again with a doubling wait after a failure (one log line each), up to the attempts
           of the policy; after the last, `Unavailable` is raised and nothing more is committed.
        3. Commit the offset after it, so a crash redelivers at most the alert in flight (same dedup key).
        """
        batch = self.consumer.poll(timeout_ms=timeout_ms)
        delivered = 0
        for tp, records in batch.items():
            for record in records:
                delivered += self._deliver(tp, record)
        return delivered

    def _deliver(self, tp: TopicPartition, record: Any) -> int:
        try:
            alert = SlaAlert.model_validate_json(record.value)
        except ValidationError as error:
            log.error("webhook: passing over an unreadable alert at %s offset %d: %s", tp, record.offset,
                      validation_problems(error))  # fmt: skip
            self._commit(tp, record.offset)
            self.stats.skipped += 1
            return 0
        event = pagerduty_event(alert, self.routing_key)
        retry(lambda: self.post(event), what=f"delivering alert {alert.alert_id} to {self.target}",
              transient=(DeliveryFailed, OSError), policy=self.policy, stop=self.stop)  # fmt: skip
        self._commit(tp, record.offset)
        self.stats.delivered += 1
        return 1

    def _commit(self, tp: TopicPartition, offset: int) -> None:
        self.consumer.commit({tp: OffsetAndMetadata(offset + 1, "", -1)})

    def close(self) -> None:
        self.consumer.close()
