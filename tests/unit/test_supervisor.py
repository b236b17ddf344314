"""The supervisor with fake components: restarts a failed one, leaves the healthy running, gives up past the limit."""

from __future__ import annotations

import threading
import time

import pytest

from infra.compose.supervisor import ComponentFailed, RestartLimit, StopFlag, Supervisor

# No backoff between restarts: these tests count restarts, not seconds.
NO_DELAY = {"first_delay_s": 0.0, "max_delay_s": 0.0}


class Healthy:
    """Runs until stopped, counting its rounds; remembers being closed."""

    def __init__(self):
        self.rounds = 0
        self.closed = False

    def run(self, *, stop):
        while not stop():
            self.rounds += 1
            time.sleep(0.01)

    def close(self):
        self.closed = True


class Failing(Healthy):
    """Raises after a few rounds."""

    def run(self, *, stop):
        for _ in range(3):
            self.rounds += 1
            time.sleep(0.01)
        raise ConnectionError("broker at 127.0.0.1:9 went away")


class Builder:
    """Counts builds; the first `failing` builds make failing components, later ones healthy components."""

    def __init__(self, failing: int, kind=Failing):
        self.failing = failing
        self.kind = kind
        self.built: list[Healthy] = []

    def __call__(self):
        component = self.kind() if len(self.built) < self.failing else Healthy()
        self.built.append(component)
        return component


def wait_until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():
        time.sleep(0.01)
    return condition()


def supervise(builders: dict, limit: RestartLimit, stop: StopFlag) -> tuple[Supervisor, threading.Thread, list]:
    """A supervisor running in a thread of its own; what it raised lands in the returned list."""
    supervisor = Supervisor(builders, stop, limit, say=lambda _line: None)
    supervisor.start()
    raised: list[BaseException] = []

    def run():
        try:
            supervisor.run()
        except BaseException as error:
            raised.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return supervisor, thread, raised


def test_a_failed_component_is_rebuilt_and_the_healthy_one_keeps_running():
    stop = StopFlag()
    flaky, steady = Builder(failing=2), Builder(failing=0)
    supervisor, thread, raised = supervise({"relay": flaky, "intake": steady}, RestartLimit(3, 60, **NO_DELAY), stop)

    assert wait_until(lambda: len(flaky.built) == 3 and flaky.built[-1].rounds > 0)
    healthy_before = steady.built[0].rounds
    assert wait_until(lambda: steady.built[0].rounds > healthy_before)
    stop.set()
    thread.join(10)

    assert not raised
    assert len(steady.built) == 1, "the healthy component was never restarted"
    assert supervisor.restarts == 2
    assert all(component.closed for component in flaky.built + steady.built)


def test_past_the_limit_everything_stops_and_the_error_names_the_component_and_its_last_error():
    stop = StopFlag()
    flaky, steady = Builder(failing=100), Builder(failing=0)
    _, thread, raised = supervise({"relay": flaky, "intake": steady}, RestartLimit(2, 60, **NO_DELAY), stop)

    thread.join(10)
    assert not thread.is_alive()
    assert len(raised) == 1 and isinstance(raised[0], ComponentFailed)
    message = str(raised[0])
    assert message.startswith("relay failed 3 times within 60 s")
    assert "ConnectionError: broker at 127.0.0.1:9 went away" in message
    assert "\n" not in message
    assert len(flaky.built) == 3, "the first build plus two restarts"
    assert stop(), "the healthy component was asked to stop"
    assert steady.built[0].closed


def test_failures_older_than_the_window_do_not_count():
    now = [0.0]
    stop = StopFlag()
    flaky = Builder(failing=100)
    limit = RestartLimit(1, 10, **NO_DELAY)
    supervisor = Supervisor({"relay": flaky}, stop, limit, lambda _l: None, clock=lambda: now[0])
    supervisor.start()
    slot = supervisor.slots["relay"]
    for _ in range(4):  # each failure 11 s after the last: never two within the window
        assert wait_until(slot.ended)
        now[0] += 11
        supervisor._restart(slot)
    assert len(flaky.built) == 5
    stop.set()
    supervisor.run()


def test_a_build_that_fails_on_restart_counts_as_a_failure():
    stop = StopFlag()
    builds = []

    def build():
        builds.append(1)
        if len(builds) == 1:
            return Failing()
        raise ConnectionError("PostgreSQL at 127.0.0.1:9 is unreachable")

    _, thread, raised = supervise({"relay": build}, RestartLimit(2, 60, **NO_DELAY), stop)
    thread.join(10)
    assert isinstance(raised[0], ComponentFailed)
    assert "PostgreSQL at 127.0.0.1:9 is unreachable" in str(raised[0])
    assert len(builds) == 3


def test_a_stop_ends_supervision_cleanly_with_no_error():
    stop = StopFlag()
    steady = Builder(failing=0)
    _, thread, raised = supervise({"intake": steady}, RestartLimit(0, 60), stop)
    assert wait_until(lambda: steady.built[0].rounds > 0)
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and not raised
    assert steady.built[0].closed


def test_a_failed_first_build_raises_at_once_and_closes_what_was_built():
    steady = Builder(failing=0)

    def broken():
        raise ConnectionError("Kafka at 127.0.0.1:9 is unreachable")

    supervisor = Supervisor({"intake": steady, "relay": broken}, StopFlag(), RestartLimit(), lambda _l: None)
    with pytest.raises(ConnectionError):
        supervisor.start()
    assert steady.built[0].closed
