"""Bounded decompression of record batches: every codec kafka-python supports, a bomb refused before it inflates."""

from __future__ import annotations

import kafka.codec as codecs
import pytest
from kafka.consumer.fetcher import Fetcher
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords
from kafka.structs import TopicPartition

from infra.kafka import guard

LIMIT = 1024 * 1024
FITS = b'{"type": "RecordResponse"}' * 1000
BOMB = bytes(LIMIT * 8)

DECODERS = {
    "gzip": (codecs.gzip_encode, guard._gzip_decode),
    "snappy": (codecs.snappy_encode, guard._snappy_decode),
    "snappy-raw": (lambda data: codecs.snappy_encode(data, xerial_compatible=False), guard._snappy_decode),
    "lz4": (codecs.lz4_encode, guard._lz4_decode),
    "zstd": (codecs.zstd_encode, guard._zstd_decode),
}


@pytest.fixture(autouse=True)
def small_limit(monkeypatch):
    monkeypatch.setattr(guard, "_limit", LIMIT)


@pytest.mark.parametrize("codec", sorted(DECODERS))
def test_a_batch_within_the_limit_inflates_as_the_library_would(codec):
    encode, decode = DECODERS[codec]

    assert decode(encode(FITS)) == FITS


@pytest.mark.parametrize("codec", sorted(DECODERS))
def test_a_batch_that_would_inflate_past_the_limit_is_refused(codec):
    encode, decode = DECODERS[codec]
    compressed = encode(BOMB)
    assert len(compressed) * 10 < len(BOMB)  # a bomb: small on the wire

    with pytest.raises(guard.BatchTooLarge, match=f"more than the {LIMIT}( bytes)? allowed"):
        decode(compressed)


def test_gzip_with_several_members_inflates_them_all():
    assert guard._gzip_decode(codecs.gzip_encode(b"one") + codecs.gzip_encode(b"two")) == b"onetwo"


@pytest.mark.parametrize("codec", ["gzip", "lz4"])
def test_a_truncated_batch_is_an_error_not_a_short_read(codec):
    encode, decode = DECODERS[codec]
    compressed = encode(FITS)

    with pytest.raises(ValueError):
        decode(compressed[: len(compressed) // 2])


def test_an_unreadable_record_names_partition_offset_and_kind():
    from kafka.structs import TopicPartition

    unreadable = guard.UnreadableRecord(TopicPartition("t", 2), 41, guard.BatchTooLarge("too big"))

    assert unreadable.kind == "oversized"
    assert str(unreadable).endswith("t/2/41: BatchTooLarge: too big")
    assert guard.UnreadableRecord(TopicPartition("t", 0), 0, UnicodeDecodeError("utf-8", b"", 0, 1, "x")).kind == (
        "unreadable"
    )


class _NotUtf8(str):
    """A header key kafka-python writes as bytes that are not UTF-8 (its builder calls `.encode("utf-8")`)."""

    def encode(self, *_args, **_kwargs) -> bytes:
        return b"\xff\xfe"


def _batch_with_an_unreadable_second_record() -> MemoryRecords:
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)  # fmt: skip
    for offset, headers in enumerate([[], [(_NotUtf8("k"), b"v")], [("k", b"v")]]):
        builder.append(offset, timestamp=None, key=b"k", value=f"record {offset}".encode(), headers=headers)
    return MemoryRecords(bytes(builder.build()))


def _records_from(fetch_offset: int) -> Fetcher.PartitionRecords:
    return Fetcher.PartitionRecords(fetch_offset, TopicPartition("t", 0), _batch_with_an_unreadable_second_record())


def test_a_record_with_a_header_key_that_is_not_utf8_is_named_by_its_own_offset():
    guard.install()
    records = _records_from(0)

    assert [r.offset for r in records.take()] == [0]
    with pytest.raises(guard.UnreadableRecord) as raised:
        records.take()

    assert (raised.value.offset, raised.value.kind) == (1, "unreadable")
    assert "UnicodeDecodeError" in raised.value.reason


def test_the_records_after_an_unreadable_one_in_its_batch_can_still_be_read():
    # A consumer that set the unreadable record aside fetches from the next offset: the broker sends the whole
    # batch again, and reading must get past the record it cannot read rather than fail on it once more.
    guard.install()

    taken = _records_from(2).take()

    assert [(r.offset, r.value) for r in taken] == [(2, b"record 2")]
    assert taken[0].headers == [("k", b"v")]
