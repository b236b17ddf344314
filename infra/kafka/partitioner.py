"""Kafka's default key-hash partitioning, with each key's partition remembered (kafka-python hashes in Python)."""

from __future__ import annotations

from functools import lru_cache

from kafka.partitioner import DefaultPartitioner, murmur2

# Enough for every ticket active in a burst; a key seen again after being forgotten is only hashed again.
KEYS_REMEMBERED = 65_536


@lru_cache(maxsize=KEYS_REMEMBERED)
def _partition_of(key: bytes, partitions: int) -> int:
    """What DefaultPartitioner picks for a key: murmur2, sign bit cleared, modulo the partition count."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class KeyHashPartitioner(DefaultPartitioner):
    """The same partition as the Java client and kafka-python's default for every key; a keyless record as the
    default places it. Topic partitions are numbered 0 to n-1, so the n-th of the sorted list is n itself."""

    def partition(self, topic, key, serialized_key, value, serialized_value, cluster):
        partitions = cluster.partitions_for_topic(topic)
        if serialized_key is None or not partitions:
            return super().partition(topic, key, serialized_key, value, serialized_value, cluster)
        return _partition_of(bytes(serialized_key), len(partitions))
