"""`nettask project` killed with SIGKILL, several times, while events stream in: no row doubled, none missing."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import pytest

from infra.compose.projections import build_projection_database
from infra.settings import Settings
from tests.integration.helpers import (
    component_env,
    delete_pipeline_topics,
    pipeline_settings,
    topic_size,
    wait_until,
)
from tests.integration.test_crash import Component
from tests.integration.test_projector import TICKETS, assert_views_equal_a_fold_of_the_store, events_published

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROUNDS = 4
FINISH_WITHIN_S = 120


class Projector(Component):
    """`nettask project` as a process; it announces itself as the projector."""

    def wait_running(self) -> None:
        running = "running projector against"
        assert wait_until(lambda: self.tail(None).count(running) >= self.starts, 60), self.tail()


@pytest.fixture
def crash_pipeline(store_settings: Settings, kafka_bootstrap: str) -> Iterator[Settings]:
    # Small batches: a kill then falls amid many transactions, not between two big ones.
    settings = pipeline_settings(store_settings, kafka_bootstrap).model_copy(update={"projector_batch": 5})
    yield settings
    delete_pipeline_topics(kafka_bootstrap, settings)


@pytest.mark.parametrize("store_settings", ["sqlite", "postgres"], indirect=True)
def test_a_projector_killed_again_and_again_leaves_every_row_once(crash_pipeline, kafka_bootstrap, tmp_path):
    settings, rng = crash_pipeline, random.Random(7171)
    projector = Projector("project", component_env(settings, kafka_bootstrap, tmp_path), tmp_path)
    rounds = threading.Thread(target=lambda: [events_published(settings, kafka_bootstrap) for _ in range(ROUNDS)])
    kills = 0
    try:
        projector.start()
        projector.wait_running()
        rounds.start()
        for _ in range(3):
            before = _projected(settings)
            wait_until(lambda before=before: _projected(settings) > before, 30, every=0.05)
            time.sleep(rng.uniform(0, 0.2))
            projector.kill()
            kills += 1
            projector.start()
            projector.wait_running()
        rounds.join(timeout=180)
        assert not rounds.is_alive(), "the commands were not all published"
        total = topic_size(kafka_bootstrap, settings.topics.events)
        assert wait_until(lambda: _projected(settings) >= total, FINISH_WITHIN_S, every=0.5), projector.tail()
    finally:
        projector.stop()

    assert kills == 3
    assert_views_equal_a_fold_of_the_store(settings, tickets=ROUNDS * TICKETS)


def _projected(settings: Settings) -> int:
    """How many records of the events topic the projector has committed, by its own offsets table."""
    db = build_projection_database(settings)
    try:
        rows = db.query(f"SELECT COALESCE(SUM(next_offset), 0) FROM {db.table('projection_offsets')}")
        return int(rows[0][0])
    except Exception:  # noqa: BLE001 - the tables may not exist yet
        return 0
    finally:
        db.close()
