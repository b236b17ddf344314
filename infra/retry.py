"""Bounded retries with exponential backoff for outages of the store or the broker, one log line per attempt."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)
# A stop request is noticed this soon while waiting between attempts.
STOP_CHECK_S = 0.1


class Unavailable(RuntimeError):
    """A store or broker the component needs cannot be used; the message is one line naming it and why."""


class Interrupted(Exception):
    """Asked to stop while waiting to try again: the caller ends its loop quietly."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often one step is tried in all (the first try included) and how long to wait in between."""

    attempts: int = 6
    first_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def delay(self, failed_attempts: int) -> float:
        """Doubling from `first_delay_s`, capped at `max_delay_s`: 0.5, 1, 2, 4, 8, 8, ..."""
        return min(self.max_delay_s, self.first_delay_s * 2 ** (failed_attempts - 1))


def one_line(error: BaseException) -> str:
    """The error's first non-empty line, led by its type name unless the message already names it."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    name = type(error).__name__
    if not lines:
        return name
    return lines[0] if lines[0].startswith(name) else f"{name}: {lines[0]}"


@dataclass
class FailuresInARow:
    """Failures of one step in a row, for a loop that tries again by going round once more (a batch rewound to
    be polled again) as much as for `retry`: each failure logs one line, the last the policy allows raises."""

    what: str
    policy: RetryPolicy
    count: int = 0

    def failed(self, error: BaseException) -> float:
        """Count a failure: the wait before the next try, or `Unavailable` when the attempts are spent."""
        self.count += 1
        if self.count >= self.policy.attempts:
            raise Unavailable(
                f"{self.what}: failed {self.count} times in a row, giving up; last error: {one_line(error)}"
            ) from error
        delay = self.policy.delay(self.count)
        log.warning("%s failed (attempt %d of %d), trying again in %.1f s: %s", self.what, self.count,
                    self.policy.attempts, delay, one_line(error))  # fmt: skip
        return delay

    def cleared(self) -> None:
        """The step succeeded: the next failure is the first again."""
        self.count = 0


def retry(
    action: Callable[[], T],
    *,
    what: str,
    transient: tuple[type[BaseException], ...],
    policy: RetryPolicy,
    stop: Callable[[], bool] = lambda: False,
    after_failure: Callable[[BaseException], None] = lambda _error: None,
) -> T:
    """`action()`, tried again after a transient error until it succeeds or `policy.attempts` are spent.

    `what` names the step and the service, e.g. "publishing to Kafka at 127.0.0.1:9092"; every failed attempt
    logs one line with it, and the last one raises `Unavailable` with it. `after_failure` runs after each failed
    attempt (to drop a client that may be broken); `stop()` ends a wait early by raising `Interrupted`.
    """
    failures = FailuresInARow(what, policy)
    while True:
        try:
            return action()
        except transient as error:
            after_failure(error)
            _pause(failures.failed(error), stop)


def _pause(seconds: float, stop: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if stop():
            raise Interrupted
        time.sleep(min(STOP_CHECK_S, left))
    if stop():
        raise Interrupted
