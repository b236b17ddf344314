"""A backlog published before any intake runs: plans and tickets on different partitions, read in any order.

Plans are keyed by customer and tickets by ticket, so an intake meets openings before the plans they need, and
follow-ups before their openings. Whatever the order, with one or two intakes killed now and then, the store
ends as a cold replay of the commands in publishing order would leave it, and nothing is dead-lettered.
(With PARK_SECONDS = 0, i.e. no waiting, the same backlog leaves commands refused: the test can fail.)
"""

from __future__ import annotations

import random
import time

import pytest

from infra.compose.desk import build_desk
from infra.compose.parking import build_parking_lot
from producers.client import CommandPublisher
from tests.integration.helpers import component_env, delete_pipeline_topics, pipeline_settings, topic_size, wait_until
from tests.integration.test_crash import Component, Stream, Watch, assert_stored_exactly_once

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# Long enough for a killed intake's partitions to move to the other one (a 10 s session) and back.
PARK_SECONDS = 120
FINISH_WITHIN_S = 150
CASES = {"sqlite, one intake": ("sqlite", 1, 5151), "postgres, two intakes": ("postgres", 2, 5252)}


@pytest.fixture(params=sorted(CASES))
def burst(request: pytest.FixtureRequest, kafka_bootstrap: str):
    store, intakes, seed = CASES[request.param]
    base = request.getfixturevalue(f"{store}_settings")
    settings = pipeline_settings(base, kafka_bootstrap, partitions=3).model_copy(
        update={"park_max_seconds": PARK_SECONDS}
    )
    build_desk(settings).close()  # the tables exist before two processes race to create them
    build_parking_lot(settings).close()
    yield settings, intakes, seed
    delete_pipeline_topics(kafka_bootstrap, settings)


def test_a_backlog_read_out_of_order_ends_as_a_replay_in_order(burst, kafka_bootstrap, policy_book, tmp_path):
    settings, count, seed = burst
    rng = random.Random(seed)
    stream = Stream(rng)
    expected = stream.expected_events(policy_book)
    total_events = sum(len(ids) for ids in expected.values())
    commands = [*stream.subscriptions, *stream.commands]
    with CommandPublisher(kafka_bootstrap, settings.topics.commands, linger_ms=5) as publisher:
        for sent in publisher.publish_all(commands):
            sent.get(timeout=30)

    env = component_env(settings, kafka_bootstrap, tmp_path)
    intakes = [Component("intake", env, _own_dir(tmp_path, n)) for n in range(count)]
    watch = Watch(settings, kafka_bootstrap)
    lot = build_parking_lot(settings)
    try:
        for intake in intakes:
            intake.start()
        kills = _kill_now_and_then(intakes, watch, rng, total_events)
        done = wait_until(lambda: watch.stored() >= total_events and lot.count() == 0, FINISH_WITHIN_S, every=0.5)
        assert done, f"{watch.stored()} of {total_events} events, {lot.count()} parked:\n" + _logs(intakes)
    finally:
        for intake in intakes:
            intake.stop()
        watch.close()
        lot.close()

    assert_stored_exactly_once(settings, stream, expected)
    assert topic_size(kafka_bootstrap, settings.topics.commands_dlq) == 0, _logs(intakes)
    print(f"\n[{settings.store}, {count} intakes] {len(commands)} commands, {total_events} events; "
          f"kills at event counts {kills}")  # fmt: skip


def _kill_now_and_then(intakes: list[Component], watch: Watch, rng: random.Random, total: int) -> list[int]:
    """Two or three SIGKILLs of a random intake while the backlog is worked off, each restarted at once."""
    kills = []
    for _ in range(rng.randint(2, 3)):
        victim = rng.choice(intakes)
        victim.wait_running()
        watch.wait_for_progress(victim)
        time.sleep(rng.uniform(0, 0.5))
        if watch.stored() >= total:
            break
        victim.kill()
        kills.append(watch.stored())
        victim.start()
    return kills


def _own_dir(tmp_path, number: int):
    path = tmp_path / f"intake-{number}"
    path.mkdir()
    return path


def _logs(intakes: list[Component]) -> str:
    return "\n".join(f"--- intake {n} ---\n{intake.tail()}" for n, intake in enumerate(intakes))
