"""Intakes joining and leaving the group while commands stream in: every command applied once, nothing refused.

Each join or leave makes the group rebalance: partitions move between intakes mid-stream, with batches in flight
and offsets committed asynchronously. Plans travel on other partitions than the tickets they enable.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import pytest

from consumers.intake import Intake
from infra.compose.components import StopFlag, build_intake
from infra.settings import Settings
from tests.integration.helpers import delete_pipeline_topics, pipeline_settings, publish, topic_size, wait_until
from tests.integration.test_crash import Stream, Watch, assert_stored_exactly_once

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

FINISH_WITHIN_S = 120


class Member:
    """One intake running in a thread of its own until stopped; an error it raised is kept, not lost."""

    def __init__(self, settings: Settings, bootstrap: str):
        self.intake: Intake = build_intake(settings, bootstrap)
        self.stop = StopFlag()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.intake.run(stop=self.stop)
        except BaseException as error:  # noqa: BLE001 - the test reports it
            self.errors.append(error)

    def leave(self) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "an intake did not stop"
        self.intake.close()


@pytest.fixture
def rebalance_settings(store_settings: Settings, kafka_bootstrap: str) -> Iterator[Settings]:
    settings = pipeline_settings(store_settings, kafka_bootstrap, partitions=6).model_copy(
        update={"park_max_seconds": FINISH_WITHIN_S}
    )
    yield settings
    delete_pipeline_topics(kafka_bootstrap, settings)


@pytest.mark.parametrize("store_settings", ["sqlite", "postgres"], indirect=True)
def test_members_joining_and_leaving_mid_stream_lose_and_double_nothing(rebalance_settings, kafka_bootstrap,
                                                                        policy_book):  # fmt: skip
    settings, rng = rebalance_settings, random.Random(6161)
    stream = Stream(rng)
    expected = stream.expected_events(policy_book)
    total = sum(len(ids) for ids in expected.values())
    watch = Watch(settings, kafka_bootstrap)
    members = [Member(settings, kafka_bootstrap), Member(settings, kafka_bootstrap)]
    left: list[Member] = []
    try:
        commands = [*stream.subscriptions, *stream.commands]
        for start in range(0, len(commands), 200):
            publish(kafka_bootstrap, settings.topics.commands, commands[start : start + 200])
            _join_or_leave(members, left, settings, kafka_bootstrap, rng)
            time.sleep(0.3)
        assert wait_until(lambda: watch.stored() >= total, FINISH_WITHIN_S, every=0.5), f"{watch.stored()} of {total}"
    finally:
        for member in members:
            member.leave()
        watch.close()

    assert [e for m in members + left for e in m.errors] == []
    assert_stored_exactly_once(settings, stream, expected)
    assert topic_size(kafka_bootstrap, settings.topics.commands_dlq) == 0
    print(f"\n[{settings.store}] {len(left)} members left and {len(members) + len(left) - 2} joined mid-stream")


def _join_or_leave(members: list[Member], left: list[Member], settings: Settings, bootstrap: str, rng) -> None:
    """A new member joins, or (while more than one runs) a random one leaves: either way the group rebalances."""
    if len(members) > 1 and rng.random() < 0.5:
        member = members.pop(rng.randrange(len(members)))
        member.leave()
        left.append(member)
    elif len(members) < 4:
        members.append(Member(settings, bootstrap))
