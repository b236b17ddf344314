"""The retry helper: tries again after transient errors only, logs each attempt, gives up in one line."""

from __future__ import annotations

import logging

import pytest

from infra.retry import Interrupted, RetryPolicy, Unavailable, one_line, retry

FAST = RetryPolicy(attempts=3, first_delay_s=0.001, max_delay_s=0.001)


def flaky(failures: int, error: Exception):
    calls = []

    def action():
        calls.append(1)
        if len(calls) <= failures:
            raise error
        return len(calls)

    return action, calls


def test_a_transient_error_is_tried_again_with_one_log_line_per_failed_attempt(caplog):
    action, calls = flaky(2, ConnectionError("refused"))
    with caplog.at_level(logging.WARNING, logger="infra.retry"):
        result = retry(action, what="reading PostgreSQL at h:1", transient=(ConnectionError,), policy=FAST)
    assert result == 3
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("reading PostgreSQL at h:1 failed (attempt 1 of 3)")
    assert lines[0].endswith("ConnectionError: refused")


def test_after_the_last_attempt_it_raises_unavailable_naming_the_step_and_the_last_error():
    action, calls = flaky(10, ConnectionError("refused\nmore detail"))
    dropped = []
    with pytest.raises(Unavailable) as raised:
        what = "publishing to Kafka at h:2"
        retry(action, what=what, transient=(ConnectionError,), policy=FAST, after_failure=dropped.append)
    expected = "publishing to Kafka at h:2: failed 3 times in a row, giving up; last error: ConnectionError: refused"
    assert str(raised.value) == expected
    assert len(calls) == 3 and len(dropped) == 3


def test_other_errors_are_not_retried():
    action, calls = flaky(1, KeyError("bug"))
    with pytest.raises(KeyError):
        retry(action, what="x", transient=(ConnectionError,), policy=FAST)
    assert len(calls) == 1


def test_a_stop_ends_the_wait():
    action, calls = flaky(10, ConnectionError("refused"))
    with pytest.raises(Interrupted):
        retry(action, what="x", transient=(ConnectionError,), policy=RetryPolicy(5, 30, 30), stop=lambda: True)
    assert len(calls) == 1


def test_delays_double_up_to_the_cap():
    assert [RetryPolicy(9, 0.5, 8).delay(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 8, 8]


def test_one_line_keeps_the_first_line_and_names_the_type():
    assert one_line(OSError("")) == "OSError"
    assert one_line(ValueError("\n  bad\nworse")) == "ValueError: bad"
