"""Dead letters fit the dead-letter topic whatever headers the original had: huge ones, repeated ones, null ones."""

from __future__ import annotations

from consumers.dead_letters import MAX_DEAD_LETTER_HEADERS, _fitting_headers
from infra.messages import DLQ_ORIGINAL_HEADER_BYTES, header

# The broker's default limit for a message, and kafka-python's producer default for a request.
BROKER_LIMIT = 1024 * 1024


def _size(headers) -> int:
    return sum(len(name.encode()) + len(value) for name, value in headers)


def test_headers_that_fit_are_kept_as_they_came():
    headers = [("message-type", b"OpenTicket"), ("x", b""), ("x", b"again")]

    assert _fitting_headers(headers) == headers


def test_headers_near_the_broker_limit_are_cut_and_their_length_is_said():
    headers = [("small", b"s"), ("big", b"z" * (BROKER_LIMIT - 2000)), ("after", b"a")]

    kept = _fitting_headers(headers)

    assert [name for name, _ in kept] == ["small", "after", DLQ_ORIGINAL_HEADER_BYTES]
    assert header(kept, DLQ_ORIGINAL_HEADER_BYTES) == str(_size(headers))
    assert _size(kept) <= MAX_DEAD_LETTER_HEADERS + 100


def test_many_headers_are_kept_only_up_to_the_limit():
    headers = [(f"h{n}", b"v" * 1000) for n in range(2000)]

    kept = _fitting_headers(headers)

    assert MAX_DEAD_LETTER_HEADERS - 1100 < _size(kept) <= MAX_DEAD_LETTER_HEADERS + 100
    assert kept[:10] == headers[:10]


def test_a_null_header_value_goes_as_an_empty_one_which_kafka_python_can_send():
    kept = _fitting_headers([("nothing", None), ("k", b"v")])

    assert kept == [("nothing", b""), ("k", b"v")]
    assert all(isinstance(value, bytes) for _, value in kept)
