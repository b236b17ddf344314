"""Runs long-lived components in threads and rebuilds a failed one, up to a limit of restarts within a window."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from infra.retry import one_line

log = logging.getLogger(__name__)
Say = Callable[[str], None]
# How often the supervisor looks at its threads; a failure is noticed at most this late.
CHECK_EVERY_S = 0.2
# A component's close() may wait on the service that made it fail; it gets this long, then is left behind.
CLOSE_TIMEOUT_S = 15.0
JOIN_TIMEOUT_S = 30.0


class StopFlag:
    """Set by SIGINT/SIGTERM or a deadline; every loop checks it between batches."""

    def __init__(self, max_seconds: float | None = None):
        self._event = threading.Event()
        self._deadline = None if max_seconds is None else time.monotonic() + max_seconds

    def __call__(self) -> bool:
        return self._event.is_set() or (self._deadline is not None and time.monotonic() >= self._deadline)

    def set(self, *_args) -> None:
        self._event.set()

    def install(self) -> StopFlag:
        signal.signal(signal.SIGINT, self.set)
        signal.signal(signal.SIGTERM, self.set)
        return self

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, waking early when stopped or at the deadline."""
        if self._deadline is not None:
            seconds = max(0.0, min(seconds, self._deadline - time.monotonic()))
        self._event.wait(seconds)


class Component(Protocol):
    def run(self, *, stop: Callable[[], bool]) -> object: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RestartLimit:
    """More than `restarts` failures of one component within `window_s` and the supervisor gives up."""

    restarts: int = 3
    window_s: float = 600.0
    # Before a rebuild, so that a component failing at once does not spin: doubles per recent failure.
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0


class ComponentFailed(RuntimeError):
    """A component failed more often than the restart limit allows; the message names it and its last error."""


class _Slot:
    """One component: its builder, the running instance and thread, what it last raised, its recent failures."""

    def __init__(self, name: str, build: Callable[[], Component]):
        self.name = name
        self.build = build
        self.component: Component | None = None
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.failures: deque[float] = deque()

    def start(self, stop: StopFlag) -> None:
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(stop,), name=self.name, daemon=True)
        self.thread.start()

    def _run(self, stop: StopFlag) -> None:
        try:
            assert self.component is not None
            self.component.run(stop=stop)
        except BaseException as error:  # whatever it was, the supervisor decides what happens next
            self.error = error

    def ended(self) -> bool:
        return self.thread is not None and not self.thread.is_alive()


class Supervisor:
    """Builds every component, runs each in a thread, and restarts (rebuilding) one that fails.

    Failure handling, in numbered steps, for a component whose thread ended while no stop was asked for:
    1. Count the failure; forget failures older than the window.
    2. More than `restarts` failures in the window: stop every component and raise `ComponentFailed`.
    3. Otherwise log one line (which component, its error, the how-manieth restart) and close the failed
       instance, bounded by CLOSE_TIMEOUT_S.
    4. Wait the backoff (ended early by a stop), build a fresh instance and start it. A build that fails
       counts as another failure of the same component.
    """

    def __init__(
        self,
        builders: dict[str, Callable[[], Component]],
        stop: StopFlag,
        limit: RestartLimit,
        say: Say,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.slots = {name: _Slot(name, build) for name, build in builders.items()}
        self.stop = stop
        self.limit = limit
        self.say = say
        self.clock = clock
        self.restarts = 0

    @property
    def components(self) -> dict[str, Component]:
        """The running instances by name (a restarted component is a new instance)."""
        return {name: slot.component for name, slot in self.slots.items() if slot.component is not None}

    def start(self) -> None:
        """Build every component, then start them. A failed build here raises at once: nothing ever ran."""
        try:
            for slot in self.slots.values():
                slot.component = slot.build()
        except BaseException:
            self._close_all()
            raise
        for slot in self.slots.values():
            slot.start(self.stop)

    def run(self, report: Callable[[], None] = lambda: None, report_every: float = 10.0) -> None:
        """Supervise until stopped; raises `ComponentFailed` past the restart limit. Closes everything."""
        next_report = self.clock() + report_every
        try:
            while not self.stop():
                for slot in self.slots.values():
                    if slot.ended() and not self.stop():
                        self._restart(slot)
                if self.clock() >= next_report:
                    report()
                    next_report = self.clock() + report_every
                self.stop.wait(CHECK_EVERY_S)
        finally:
            self.stop.set()
            self._close_all()

    def _restart(self, slot: _Slot) -> None:
        while True:
            # 1. Count it.
            error = slot.error or RuntimeError("it ended without being asked to stop")
            now = self.clock()
            slot.failures.append(now)
            while slot.failures and slot.failures[0] < now - self.limit.window_s:
                slot.failures.popleft()
            # 2. Past the limit: give up.
            if len(slot.failures) > self.limit.restarts:
                raise ComponentFailed(
                    f"{slot.name} failed {len(slot.failures)} times within {self.limit.window_s:.0f} s, "
                    f"giving up; last error: {one_line(error)}"
                ) from error
            # 3. Report and close the failed instance.
            self.restarts += 1
            delay = min(self.limit.max_delay_s, self.limit.first_delay_s * 2 ** (len(slot.failures) - 1))
            log.error(
                "%s failed, restarting it in %.1f s (restart %d of at most %d within %.0f s): %s", slot.name, delay,
                len(slot.failures), self.limit.restarts, self.limit.window_s, one_line(error),
            )  # fmt: skip
            if slot.component is not None:
                _close_bounded(slot.name, slot.component)
                slot.component = None
            # 4. Back off, rebuild, start.
            self.stop.wait(delay)
            if self.stop():
                return
            try:
                slot.component = slot.build()
            except Exception as build_error:
                slot.error = build_error
                continue
            slot.start(self.stop)
            return

    def _close_all(self) -> None:
        for slot in self.slots.values():
            if slot.thread is not None:
                slot.thread.join(timeout=JOIN_TIMEOUT_S)
        for slot in self.slots.values():
            if slot.component is not None:
                _close_bounded(slot.name, slot.component)


def _close_bounded(name: str, component: Component) -> None:
    """close(), given CLOSE_TIMEOUT_S: a client stuck on a dead service must not hold up the others."""

    def close() -> None:
        try:
            component.close()
        except Exception as error:  # it failed already; a failing close only gets reported
            log.warning("%s: closing it failed: %s", name, one_line(error))

    closer = threading.Thread(target=close, name=f"close-{name}", daemon=True)
    closer.start()
    closer.join(CLOSE_TIMEOUT_S)
    if closer.is_alive():
        log.warning("%s: still closing after %.0f s; left behind", name, CLOSE_TIMEOUT_S)
