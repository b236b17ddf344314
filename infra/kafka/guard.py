"""Reading untrusted records with kafka-python: decompression bounded, and a record it cannot read named, not fatal.

kafka-python inflates a compressed batch whole before it looks at a single record, so a small gzip "bomb" (300 KB
that inflates to 300 MB) costs the consumer all of that memory. And a record it cannot decode (a header key that
is not UTF-8, a failed CRC) makes every `poll()` raise a bare CorruptRecordError that names neither partition nor
offset, so a consumer can only crash, restart and crash again on the same record. `install()` replaces the
library's decoders of record batches with bounded ones, and turns any failure to unpack a partition's records into
an `UnreadableRecord` that names the partition and the offset, so the consumer can set it aside and go on.
Written against kafka-python 3.0 (pinned below 3.1 in pyproject.toml); the integration tests exercise it.
"""

from __future__ import annotations

import io
import struct
import zlib

import kafka.codec as codecs
from kafka.consumer.fetcher import Fetcher
from kafka.errors import KafkaError
from kafka.record import default_records
from kafka.record.util import decode_varint
from kafka.structs import TopicPartition

# A record batch may inflate to at most this much; the intake sets it from its settings.
DEFAULT_MAX_BATCH_BYTES = 16 * 1024 * 1024
_limit = DEFAULT_MAX_BATCH_BYTES
_installed = False
_XERIAL_HEADER = 16


class BatchTooLarge(ValueError):
    """A compressed batch would inflate past the limit; it was not inflated."""


class UnreadableRecord(KafkaError):
    """kafka-python could not unpack the record at `offset` of `partition`; `kind` is oversized or unreadable."""

    def __init__(self, partition: TopicPartition, offset: int, cause: Exception):
        self.partition = partition
        self.offset = offset
        self.kind = "oversized" if isinstance(cause, BatchTooLarge) else "unreadable"
        self.reason = f"{type(cause).__name__}: {cause}"
        super().__init__(f"{partition.topic}/{partition.partition}/{offset}: {self.reason}")


def install(max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES) -> None:
    """Bound decompression to `max_batch_bytes` a batch and name unreadable records, for every consumer."""
    global _limit, _installed
    _limit = max_batch_bytes
    if _installed:
        return
    default_records.gzip_decode = _gzip_decode
    default_records.snappy_decode = _snappy_decode
    default_records.lz4_decode = _lz4_decode if codecs.lz4 else None
    default_records.zstd_decode = _zstd_decode
    default_records.DefaultRecordBatch._read_msg = _read_or_mark(default_records.DefaultRecordBatch._read_msg)
    original = Fetcher.PartitionRecords._unpack_records

    def unpack_or_name_the_record(self, tp, records, key_deserializer, value_deserializer):
        try:
            for record in original(self, tp, records, key_deserializer, value_deserializer):
                if not isinstance(record.headers, _Unreadable):
                    yield record
                elif record.offset >= self.fetch_offset:
                    # Back to the failed record, as for any other failure: once the consumer seeks past it, the
                    # fetcher sees these records are not next in line and drops them (else it spins on them).
                    self.next_fetch_offset = record.offset
                    raise UnreadableRecord(tp, record.offset, record.headers.cause)
                # else: before the fetch position, so set aside already; the batch's later records follow.
        except UnreadableRecord:
            raise
        except Exception as error:
            # Everything before this record was handed out, so the failed one is the next to fetch.
            raise UnreadableRecord(tp, self.next_fetch_offset, error) from error

    Fetcher.PartitionRecords._unpack_records = unpack_or_name_the_record
    _installed = True


class _Unreadable(list):
    """The (empty) headers of a record that could not be read: marks it and keeps the cause."""

    def __init__(self, cause: Exception):
        super().__init__()
        self.cause = cause


def _read_or_mark(read_msg):
    """A record whose frame is sound but whose content is not (a header key that is not UTF-8) becomes a marked,
    empty record, and reading goes on after it.

    Raising instead would end the batch there: a fetch from a later offset reads the batch from its start again,
    fails on the same record, and the records after it, valid ones too, could never be reached.
    """

    def read(batch):
        start = batch._pos
        try:
            return read_msg(batch)
        except Exception as error:
            return _marked(batch, start, error)

    return read


def _marked(batch, start: int, error: Exception):
    """The record at `start` as an empty record with its offset and the error; the error itself if even the
    record's length and offset cannot be read."""
    buffer = batch._buffer
    try:
        length, pos = decode_varint(buffer, start)
        end = pos + length
        _, pos = decode_varint(buffer, pos)  # attributes
        _, pos = decode_varint(buffer, pos)  # timestamp delta
        offset_delta, pos = decode_varint(buffer, pos)
    except Exception:
        raise error from None
    if length <= 0 or end > len(buffer) or pos > end:
        raise error
    batch._pos = end
    return default_records.DefaultRecord(
        length, batch.base_offset + offset_delta, batch.first_timestamp, batch.timestamp_type, None, None,
        _Unreadable(error),
    )  # fmt: skip


def _too_large(size: int | None = None) -> BatchTooLarge:
    if size is None:
        return BatchTooLarge(f"the compressed batch inflates to more than the {_limit} bytes allowed")
    return BatchTooLarge(f"the compressed batch inflates to {size} bytes, more than the {_limit} allowed")


def _gzip_decode(payload) -> bytes:
    """Inflate member after member (as GzipFile does), never more than the limit plus one byte."""
    out = bytearray()
    data = bytes(payload)
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while data and not inflater.eof:
            out += inflater.decompress(data, _limit + 1 - len(out))
            if len(out) > _limit:
                raise _too_large()
            data = inflater.unconsumed_tail
            if not data and not inflater.eof:
                raise ValueError("the gzip data ends early")
        data = inflater.unused_data
    return bytes(out)


def _snappy_decode(payload) -> bytes:
    """Snappy states each block's inflated length up front: check it before inflating anything."""
    data = bytes(payload)
    if not codecs._detect_xerial_stream(data):
        _check_size(_snappy_length(data, 0))
        return codecs.snappy.decompress(data)
    blocks, cursor, total = [], _XERIAL_HEADER, 0
    while cursor < len(data):
        (size,) = struct.unpack_from("!i", data, cursor)
        block = data[cursor + 4 : cursor + 4 + size]
        total += _snappy_length(block, 0)
        _check_size(total)
        blocks.append(codecs.snappy.decompress(block))
        cursor += 4 + size
    return b"".join(blocks)


def _snappy_length(data: bytes, position: int) -> int:
    """The varint at the start of a raw snappy block: its inflated length."""
    length, shift = 0, 0
    for byte in data[position : position + 5]:
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return length
        shift += 7
    raise ValueError("not a snappy block: no length header")


def _check_size(size: int) -> None:
    if size > _limit:
        raise _too_large(size)


def _lz4_decode(payload) -> bytes:
    inflater = codecs.lz4.LZ4FrameDecompressor()
    out = inflater.decompress(bytes(payload), max_length=_limit + 1)
    if len(out) > _limit:
        raise _too_large()
    if not inflater.eof:
        raise ValueError("the lz4 frame ends early")
    return out


def _zstd_decode(payload) -> bytes:
    if codecs.zstd is None:
        raise NotImplementedError("Zstd codec is not available")
    with codecs.zstd.ZstdDecompressor().stream_reader(io.BytesIO(bytes(payload)), read_across_frames=True) as reader:
        out = reader.read(_limit + 1)
    if len(out) > _limit:
        raise _too_large()
    return out
