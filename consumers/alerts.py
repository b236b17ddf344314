"""Alerts: SlaBreached and SlaAtRisk events become enriched alerts on `tickets.sla-alerts`, exactly once.

Why exactly once. Alerts and the consumed offsets of `tickets.events` are committed in ONE Kafka transaction
(consume-transform-produce with `send_offsets_to_transaction`), so a reader with `isolation_level=read_committed`
sees a batch's alerts if and only if its offsets moved past it. The enrichment facts (reference, plan, current
severity, and the last stream version applied per ticket) are state too, and they are kept where nothing can
diverge from the offsets: in memory, derived from the events topic itself. Events are keyed by ticket, so a
partition's facts depend on that partition alone; whenever a partition's batch does not start where this
consumer's facts end (it is new here, or another member processed it meanwhile), the partition is read again
from its start, records before the committed offset only rebuilding facts. So after a crash, a restart or a
rebalance, the facts at offset N are exactly those a consumer that never stopped would have held at N. The
last stream version per ticket makes a repeat from the relay (the same event again) change nothing and raise no
second alert; the alert id, uuid5 of the event id, lets readers recognise an alert in any case.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson
from kafka import TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from consumers.idle_watch import IdleWatch
from consumers.sla_alert import ALERT_EVENTS, FACT_EVENTS, SlaAlert, TicketFacts, alert_for, facts_after
from domain.validation import validation_problems
from infra.messages import MESSAGE_ID, MESSAGE_TYPE, SCHEMA, STREAM_VERSION, Headers, header

log = logging.getLogger(__name__)
# An idle consumer looks at stop() this often.
POLL_MS = 500
ALERT_MESSAGE_TYPE = "SlaAlert"
EVENT_CLASSES = {event.__name__: event for event in (*FACT_EVENTS, *ALERT_EVENTS)}
NO_FACTS = TicketFacts()
Staged = dict[tuple[TopicPartition, bytes], TicketFacts]


@dataclass
class AlertStats:
    alerts: int = 0
    repeats: int = 0
    batches: int = 0
    rebuilds: int = 0
    aborted: int = 0


@dataclass
class _Partition:
    """Where a partition's facts end (None: just rewound to its start) and from which offset on it raises alerts."""

    next_offset: int | None
    alerts_from: int


def alert_value(alert: SlaAlert) -> bytes:
    return orjson.dumps(alert.model_dump(mode="json"))


def alert_headers(alert: SlaAlert) -> Headers:
    return [
        (MESSAGE_TYPE, ALERT_MESSAGE_TYPE.encode()),
        (SCHEMA, str(SlaAlert.schema_version).encode()),
        (MESSAGE_ID, str(alert.alert_id).encode()),
    ]


class Alerts:
    """Consumes `tickets.events` and produces alerts, each poll batch in one transaction.

    It receives its Kafka clients: `consumers` builds a consumer subscribed to the events topic in the alerts
    group, with auto-commit off (called again when the consumer must rejoin afresh); `producer` has a
    transactional id that stays the same when this process restarts.
    """

    def __init__(self, consumers: Callable[[], Any], producer: Any, alerts_topic: str):
        self.producer = producer
        self.topic = alerts_topic
        self.facts: dict[TopicPartition, dict[bytes, TicketFacts]] = {}
        self.partitions: dict[TopicPartition, _Partition] = {}
        self.stats = AlertStats()
        self.idle = IdleWatch()
        # Aborts what an earlier producer with this transactional id left open, and fences that producer out.
        producer.init_transactions()
        self.consumers = consumers
        self.consumer = consumers()

    def __enter__(self) -> Alerts:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def run(self, *, stop: Callable[[], bool] = lambda: False, max_seconds: float | None = None) -> AlertStats:
        """Process batches until `stop()` says so or `max_seconds` pass."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        while not stop() and (deadline is None or time.monotonic() < deadline):
            self.process_once()
            if self.idle.stuck(bool(self.consumer.assignment())):
                self._rejoin()
        return self.stats

    def _rejoin(self) -> None:
        """Leave the group and join again with a new consumer. Offsets move only in transactions, and a partition
        this member gets back where its facts end goes on; any other is rebuilt (step 2)."""
        log.warning("alerts: no partition held for %.0f s: rejoining the group with a new consumer", self.idle.after)
        self.consumer.close()
        self.consumer = self.consumers()

    def process_once(self, timeout_ms: int = POLL_MS) -> int:
        """One poll batch, in six steps; returns how many alerts it committed.

        1. Poll a batch of events.
        2. Rewind to its start every partition whose batch does not begin where its facts end (see the module
           docstring); its records in this batch are dropped, they come again after the rebuild.
        3. Apply the records in offset order to a staged copy of the facts, skipping repeats (a stream version
           already applied); an SlaBreached or SlaAtRisk at or past the partition's `alerts_from` becomes an alert.
        4. In one transaction: send the alerts, add the batch's next offsets with the group's metadata (a member
           that lost its partitions in a rebalance is refused), commit.
        5. Only then keep the staged facts. A crash before the commit leaves the transaction open until the next
           producer with this transactional id aborts it: read_committed readers never see its alerts, the
           offsets did not move, and the batch is done again on facts that never saw it.
        6. A transaction that fails is aborted and the batch's partitions are sought back to its first offsets;
           the staged facts are dropped, so the next try starts from the same facts.
        """
        batch = self._continuous(self.consumer.poll(timeout_ms=timeout_ms))
        if not batch:
            return 0
        staged: Staged = {}
        alerts = [alert for records in batch.values() for r in records if (alert := self._apply(r, staged))]
        offsets = self._offsets(batch)
        if offsets:
            try:
                self._transact(alerts, offsets)
            except KafkaError as error:
                self._abort(batch, error)
                return 0
        self._keep(batch, staged)
        self.stats.alerts += len(alerts)
        self.stats.batches += 1
        return len(alerts)

    def _continuous(self, batch: dict[TopicPartition, list]) -> dict[TopicPartition, list]:
        """The batch without the partitions that must be rebuilt first (step 2)."""
        kept = {}
        for tp, records in batch.items():
            state = self.partitions.get(tp)
            first = records[0].offset
            if state is None and first == 0:
                self.partitions[tp], self.facts[tp] = _Partition(0, 0), {}
            elif state is None or state.next_offset not in (None, first):
                self._rewind(tp, alerts_from=first)
                continue
            kept[tp] = records
        return kept

    def _rewind(self, tp: TopicPartition, alerts_from: int) -> None:
        log.info("alerts: rebuilding the facts of %s from its start; alerts from offset %d", tp, alerts_from)
        self.partitions[tp], self.facts[tp] = _Partition(None, alerts_from), {}
        self.consumer.seek_to_beginning(tp)
        self.stats.rebuilds += 1

    def _apply(self, record: Any, staged: Staged) -> SlaAlert | None:
        """Step 3 for one record: the staged facts updated, and the alert it raises, if any."""
        tp = TopicPartition(record.topic, record.partition)
        key = record.key or b""
        facts = staged.get((tp, key)) or self.facts[tp].get(key, NO_FACTS)
        version = int(header(record.headers, STREAM_VERSION) or 0)
        if version <= facts.version:
            self.stats.repeats += 1
            return None
        event_class = EVENT_CLASSES.get(header(record.headers, MESSAGE_TYPE) or "")
        if event_class is None:
            staged[tp, key] = replace(facts, version=version)
            return None
        try:
            event = event_class.model_validate_json(record.value)
        except ValidationError as error:  # the relay forwards stored events only: this is a bug, not an input
            log.error(
                "alerts: skipping unreadable event at %s offset %d: %s", tp, record.offset, validation_problems(error)
            )
            return None
        staged[tp, key] = facts_after(facts, event)
        if isinstance(event, ALERT_EVENTS) and record.offset >= self.partitions[tp].alerts_from:
            return alert_for(event, facts)  # type: ignore[arg-type]
        return None

    def _offsets(self, batch: dict[TopicPartition, list]) -> dict[TopicPartition, OffsetAndMetadata]:
        """Next offsets of the partitions past their `alerts_from`: a rebuild must never move a commit back."""
        return {
            tp: OffsetAndMetadata(records[-1].offset + 1, "", -1)
            for tp, records in batch.items()
            if records[-1].offset >= self.partitions[tp].alerts_from
        }

    def _transact(self, alerts: list[SlaAlert], offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Step 4."""
        self.producer.begin_transaction()
        for alert in alerts:
            key = str(alert.ticket_id).encode()
            self.producer.send(self.topic, key=key, value=alert_value(alert), headers=alert_headers(alert))
        self.producer.send_offsets_to_transaction(offsets, self.consumer.group_metadata())
        self.producer.commit_transaction()

    def _keep(self, batch: dict[TopicPartition, list], staged: Staged) -> None:
        """Step 5."""
        for (tp, key), facts in staged.items():
            self.facts[tp][key] = facts
        for tp, records in batch.items():
            self.partitions[tp].next_offset = records[-1].offset + 1

    def _abort(self, batch: dict[TopicPartition, list], error: KafkaError) -> None:
        """Step 6; an abort that fails too (a fenced producer) is raised: the component must be rebuilt."""
        log.warning("alerts: transaction failed, aborting it and trying the batch again: %s", error)
        try:
            self.producer.abort_transaction()
        except Exception as abort_error:
            raise error from abort_error
        assigned = self.consumer.assignment()
        for tp, records in batch.items():
            if tp in assigned:
                self.consumer.seek(tp, records[0].offset)
        self.stats.aborted += 1

    def close(self) -> None:
        try:
            self.producer.close(timeout=5)
        finally:
            self.consumer.close()
