"""Consumers in a group notice when they have held no partition for a while, and rejoin afresh; not otherwise."""

from __future__ import annotations

import sqlite3

import pytest
from kafka import TopicPartition

from consumers.alert_webhook import WebhookForwarder
from consumers.alerts import Alerts
from consumers.idle_watch import IdleWatch
from consumers.projector import Projector
from infra.retry import RetryPolicy
from projections.database import ProjectionDatabase
from projections.sla.projection import SlaProjection


def test_no_partitions_for_too_long_is_stuck_once_and_the_watch_starts_over():
    watch = IdleWatch(after=0.0)

    assert not watch.stuck(assigned=False)
    assert watch.stuck(assigned=False)
    assert not watch.stuck(assigned=False)  # the rejoin gets its own time


def test_having_partitions_resets_the_watch():
    watch = IdleWatch(after=0.0)
    watch.stuck(assigned=False)

    assert not watch.stuck(assigned=True)
    assert not watch.stuck(assigned=False)


def test_a_short_gap_without_partitions_is_not_stuck():
    watch = IdleWatch(after=3600.0)

    assert not any(watch.stuck(assigned=False) for _ in range(3))


class GroupMember:
    """A fake consumer in a group: polls nothing, holds the partitions it is given, remembers being closed."""

    def __init__(self, partitions: set[TopicPartition]):
        self.partitions = partitions
        self.closed = False

    def poll(self, timeout_ms: int) -> dict:
        return {}

    def assignment(self) -> set[TopicPartition]:
        return self.partitions

    def close(self, *_args, **_kwargs) -> None:
        self.closed = True


class Members:
    """The consumer factory: the first member holds `first`, every later one a partition."""

    def __init__(self, first: set[TopicPartition]):
        self.first = first
        self.built: list[GroupMember] = []

    def __call__(self, *_listener) -> GroupMember:
        partitions = self.first if not self.built else {TopicPartition("t", 0)}
        self.built.append(GroupMember(partitions))
        return self.built[-1]


class Producer:
    def init_transactions(self) -> None:
        pass

    def close(self, *_args, **_kwargs) -> None:
        pass


def projector(members: Members) -> Projector:
    db = ProjectionDatabase(lambda: sqlite3.connect(":memory:", isolation_level=None))
    return Projector(db, [SlaProjection(db)], members, Producer(), topic="t", dlq_topic="dlq", group="g")


def alerts(members: Members) -> Alerts:
    return Alerts(members, Producer(), "alerts")


def webhook(members: Members) -> WebhookForwarder:
    return WebhookForwarder(members, lambda _event: None, "key", RetryPolicy(attempts=1))


def after_rounds(rounds: int):
    """A stop() that says stop once the loop has gone round `rounds` times."""
    calls = iter(range(rounds + 1))
    return lambda: next(calls, rounds) >= rounds


@pytest.mark.parametrize("build", [projector, alerts, webhook], ids=["projector", "alerts", "webhook"])
def test_a_consumer_left_without_partitions_rejoins_with_a_new_one_and_then_stays(build):
    members = Members(first=set())
    component = build(members)
    component.idle = IdleWatch(after=0.0)

    component.run(stop=after_rounds(5))

    assert len(members.built) == 2, "one rejoin, then the new member holds a partition and stays"
    assert members.built[0].closed and not members.built[1].closed
    assert component.consumer is members.built[1]


@pytest.mark.parametrize("build", [projector, alerts, webhook], ids=["projector", "alerts", "webhook"])
def test_a_consumer_with_partitions_never_rejoins(build):
    members = Members(first={TopicPartition("t", 0)})
    component = build(members)
    component.idle = IdleWatch(after=0.0)

    component.run(stop=after_rounds(5))

    assert len(members.built) == 1 and not members.built[0].closed
