"""The relay's partitioner picks, for every key, the partition kafka-python's default (and the Java client) picks."""

from __future__ import annotations

import uuid

from kafka.partitioner import DefaultPartitioner

from infra.kafka.partitioner import KeyHashPartitioner


class Cluster:
    """The part of kafka-python's ClusterMetadata a partitioner reads: one topic and its partitions."""

    def __init__(self, topic: str, partitions: int):
        self.topic, self.partitions = topic, set(range(partitions))

    def topics(self) -> set[str]:
        return {self.topic}

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions if topic == self.topic else None

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions


def test_every_key_lands_where_the_default_partitioner_puts_it_for_any_partition_count():
    keys = [str(uuid.uuid4()).encode() for _ in range(300)] + [b"2026-03", b"cust-1", b""]
    ours, default = KeyHashPartitioner(), DefaultPartitioner()
    for partitions in (1, 3, 6, 7, 12):
        cluster = Cluster("tickets.events", partitions)
        for key in keys * 2:  # the second time from what it remembered
            expected = default.partition("tickets.events", key, key, b"v", b"v", cluster)
            assert ours.partition("tickets.events", key, key, b"v", b"v", cluster) == expected


def test_a_keyless_record_still_gets_one_of_the_topics_partitions():
    cluster = Cluster("tickets.events", 6)
    assert KeyHashPartitioner().partition("tickets.events", None, None, b"v", b"v", cluster) in range(6)
