"""Crash tests: `nettask intake` and `nettask relay` killed with SIGKILL at random moments under a command stream.

Whatever the moment of the kill, after restarts every command's effect is stored exactly once, and every stored
event reaches the events topic, in stream order per ticket (the relay may repeat some after a crash, never skip).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest

from domain import commands as c
from domain.desk import TicketDesk
from domain.policy import PolicyBook
from infra.compose.desk import build_desk
from infra.messages import MESSAGE_ID, header
from infra.settings import Settings
from producers.client import CommandPublisher
from tests.integration.helpers import (
    T0,
    assert_published_in_order,
    component_env,
    customer_reply,
    delete_pipeline_topics,
    event_id_of,
    open_ticket,
    pipeline_settings,
    read_all,
    respond,
    stored_log,
    subscribe,
    topic_size,
    unique,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

NETTASK = Path(sys.executable).with_name("nettask")
CUSTOMERS = 20
TICKETS = 200
COMMANDS_PER_TICKET = 10
# Every process ends by itself after this, should the test die without stopping it.
PROCESS_LIFETIME_S = 170
# From the last kill to everything stored and published; a healthy run needs a fraction of it.
FINISH_WITHIN_S = 120
# A process is killed only once it does some work after its turn comes, or after this long anyway.
PROGRESS_WAIT_S = 15


class Component:
    """One `nettask intake|relay` process, restarted after each kill, its output appended to a log file."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path):
        self.name = name
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.kills = 0

    def start(self) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(NETTASK), self.name, "--max-seconds", str(PROCESS_LIFETIME_S)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or committed."""
        assert self.process is not None and self.process.poll() is None, f"{self.name} had already ended"
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.kills += 1

    def stop(self) -> None:
        """SIGTERM: the component finishes its batch and closes; SIGKILL if it does not within 30 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)

    def wait_running(self) -> None:
        """Until this start of the process has built its store and its Kafka clients (it says so on stderr)."""
        running = f"running {self.name} against"
        assert wait_until(lambda: self.tail(None).count(running) >= self.starts, 60), self.tail()

    def tail(self, chars: int | None = 3000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-chars:] if chars else text


# --- the command stream and what it must leave in the store ----------------------------------------------


class Stream:
    """Subscriptions, then 200 tickets of 10 commands each, interleaved at random with each ticket's order kept."""

    def __init__(self, rng: random.Random):
        customers = [unique("cust") for _ in range(CUSTOMERS)]
        self.subscriptions = [subscribe(customer) for customer in customers]
        self.tickets = [self._story(customers[n % CUSTOMERS], n) for n in range(TICKETS)]
        turns = [n for n in range(TICKETS) for _ in range(COMMANDS_PER_TICKET)]
        rng.shuffle(turns)
        next_step = [0] * TICKETS
        self.commands: list[c.Command] = []
        for n in turns:
            self.commands.append(self.tickets[n][next_step[n]])
            next_step[n] += 1

    @staticmethod
    def _story(customer: str, n: int) -> list[c.Command]:
        """Open, then agent responses and customer replies by turns, five minutes apart."""
        opening = open_ticket(customer, T0 + timedelta(minutes=n))
        later = [opening.occurred_at + timedelta(minutes=5 * k) for k in range(1, COMMANDS_PER_TICKET)]
        return [
            opening,
            *(
                respond(opening.ticket_id, at) if k % 2 else customer_reply(opening.ticket_id, at)
                for k, at in enumerate(later, start=1)
            ),
        ]

    def expected_events(self, policy_book: PolicyBook) -> dict[UUID, list[UUID]]:
        """Each stream's event ids, decided once each on an in-memory desk: the oracle."""
        desk = TicketDesk(policy_book)
        for command in [*self.subscriptions, *(command for story in self.tickets for command in story)]:
            assert desk.handle(command).status == "applied"
        streams = [c.customer_stream_id(s.customer_id) for s in self.subscriptions]
        streams += [story[0].ticket_id for story in self.tickets]
        return {stream: [e.event_id for e in desk.events_of(stream)] for stream in streams}


def publish_slowly(bootstrap: str, topic: str, commands: list[c.Command], rng: random.Random, done: list) -> None:
    """Publish in bursts of 20-80 commands 0.6 s apart (about 25 s in all), so that kills fall amid the stream."""
    with CommandPublisher(bootstrap, topic, linger_ms=1) as publisher:
        position = 0
        while position < len(commands):
            burst = commands[position : position + rng.randint(20, 80)]
            for send in publisher.publish_all(burst):
                send.get(timeout=30)
            position += len(burst)
            time.sleep(0.6)
    done.append(position)


# --- waiting, bounded -------------------------------------------------------------------------------------


class Watch:
    """The test's own view of the store and the events topic while the processes run."""

    def __init__(self, settings: Settings, bootstrap: str):
        self.settings = settings
        self.bootstrap = bootstrap
        self.desk = build_desk(settings)

    def stored(self) -> int:
        return len(stored_log(self.settings, self.desk))

    def progress_of(self, component: Component) -> Callable[[], int]:
        """A number that grows while the component works: the last notification id, or the topic's size."""
        if component.name == "intake":
            return lambda: self.desk.recorder.max_notification_id() or 0
        return lambda: topic_size(self.bootstrap, self.settings.topics.events)

    def wait_for_progress(self, component: Component) -> None:
        """Until the component has done some work since now, so that a kill interrupts real work."""
        measure = self.progress_of(component)
        before = measure()
        wait_until(lambda: measure() > before, PROGRESS_WAIT_S, every=0.05)

    def all_stored_and_published(self, total_events: int) -> bool:
        stored = stored_log(self.settings, self.desk)
        if len(stored) < total_events:
            return False
        size = topic_size(self.bootstrap, self.settings.topics.events)
        if size < len(stored):
            return False
        records = read_all(self.bootstrap, self.settings.topics.events, size, 30)
        return {event_id_of(n.state) for n in stored} <= {header(r.headers, MESSAGE_ID) for r in records}

    def close(self) -> None:
        self.desk.close()


# --- the test -----------------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def crash_settings(request: pytest.FixtureRequest, kafka_bootstrap: str) -> Iterator[Settings]:
    """A store of its own (SQLite file or fresh PostgreSQL schema) and random topics with 3 partitions."""
    base = request.getfixturevalue(f"{request.param}_settings")
    settings = pipeline_settings(base, kafka_bootstrap, partitions=3)
    build_desk(settings).close()  # the tables exist before two processes race to create them
    yield settings
    delete_pipeline_topics(kafka_bootstrap, settings)


SEEDS = {"sqlite": 4242, "postgres": 4343}


def test_killed_intake_and_relay_lose_and_double_nothing(crash_settings, kafka_bootstrap, policy_book, tmp_path):
    settings = crash_settings
    rng = random.Random(SEEDS[settings.store])
    stream = Stream(rng)
    expected = stream.expected_events(policy_book)
    total_events = sum(len(ids) for ids in expected.values())
    env = component_env(settings, kafka_bootstrap, tmp_path)
    components = {name: Component(name, env, tmp_path) for name in ("intake", "relay")}
    watch = Watch(settings, kafka_bootstrap)
    started = time.monotonic()
    try:
        # One after the other: two processes building the PostgreSQL store at once can fail on its DDL.
        for component in components.values():
            component.start()
            component.wait_running()
        _publish_subscriptions(stream, watch, components)
        kills = _stream_with_kills(stream, watch, components, rng)
        finished = wait_until(lambda: watch.all_stored_and_published(total_events), FINISH_WITHIN_S, every=0.5)
        assert finished, "not everything stored and published in time:\n" + _logs(components)
    finally:
        for component in components.values():
            component.stop()
        watch.close()
    elapsed = time.monotonic() - started

    assert_stored_exactly_once(settings, stream, expected)
    duplicates = assert_published_in_order(settings, kafka_bootstrap)
    assert topic_size(kafka_bootstrap, settings.topics.commands_dlq) == 0, _logs(components)
    print(
        f"\n[{settings.store}, seed {SEEDS[settings.store]}] {len(stream.commands) + CUSTOMERS} commands, "
        f"{total_events} events; kills at (s, component): {[(round(t - started, 1), n) for t, n in kills]}; "
        f"relay duplicates on the topic: {duplicates}; {elapsed:.0f} s"
    )


def _stream_with_kills(stream: Stream, watch: Watch, components: dict[str, Component], rng: random.Random):
    """Publish the ticket commands in the background while killing (and restarting) 3-5 times at random."""
    published: list[int] = []
    publisher = threading.Thread(
        target=publish_slowly,
        args=(watch.bootstrap, watch.settings.topics.commands, stream.commands, random.Random(rng.random()), published),
        daemon=True,
    )
    publisher.start()
    kills = []
    for _ in range(rng.randint(3, 5)):
        victim = components[rng.choice(["intake", "relay"])]
        time.sleep(rng.uniform(0.5, 2.5))
        watch.wait_for_progress(victim)
        time.sleep(rng.uniform(0, 0.3))
        victim.kill()
        kills.append((time.monotonic(), victim.name))
        victim.start()
    publisher.join(timeout=120)
    assert published == [len(stream.commands)], "the publisher did not finish"
    return kills


def _publish_subscriptions(stream: Stream, watch: Watch, components: dict) -> None:
    """Subscriptions go first and must be stored before any opening: they travel on other partitions."""
    with CommandPublisher(watch.bootstrap, watch.settings.topics.commands, linger_ms=1) as publisher:
        publisher.publish_all(stream.subscriptions)
    assert wait_until(lambda: watch.stored() >= CUSTOMERS, 60), _logs(components)


def assert_stored_exactly_once(settings: Settings, stream: Stream, expected: dict[UUID, list[UUID]]) -> None:
    """Every stream holds exactly the oracle's events, in order; every ticket saw exactly its commands."""
    desk = build_desk(settings)
    try:
        for stream_id, event_ids in expected.items():
            stored = list(desk.events_of(stream_id))
            assert [e.event_id for e in stored] == event_ids
            assert [e.originator_version for e in stored] == list(range(1, len(event_ids) + 1))
        for story in stream.tickets:
            ticket = desk.ticket(story[0].ticket_id)
            assert ticket.seen_commands == {command.command_id for command in story}
    finally:
        desk.close()
    assert len(stored_log(settings)) == sum(len(ids) for ids in expected.values())


def _logs(components: dict[str, Component]) -> str:
    return "\n".join(f"--- {name} ---\n{component.tail()}" for name, component in components.items())
