"""`nettask alerts run` killed with SIGKILL and started again, and `nettask alerts follow`, as processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.sla_alert import SlaAlert
from infra.settings import Settings
from tests.integration.helpers import component_env, delete_pipeline_topics, pipeline_settings, topic_size, wait_until
from tests.integration.test_alerts import (
    TICKETS,
    assert_one_alert_per_breach,
    breach_records,
    breaches_published,
    expected_alert_ids,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
NETTASK = Path(sys.executable).with_name("nettask")


@pytest.fixture
def pipeline(sqlite_settings: Settings, kafka_bootstrap: str) -> Iterator[Settings]:
    settings = pipeline_settings(sqlite_settings, kafka_bootstrap)
    yield settings
    delete_pipeline_topics(kafka_bootstrap, settings)


def test_alerts_run_killed_and_restarted_leaves_one_alert_per_breach(pipeline, kafka_bootstrap, tmp_path):
    openings = breaches_published(pipeline, kafka_bootstrap, tickets=TICKETS)
    env = component_env(pipeline, kafka_bootstrap, tmp_path)
    first = subprocess.Popen([NETTASK, "alerts", "run", "--max-seconds", "60"], env=env, stderr=subprocess.DEVNULL)
    try:
        # Killed as soon as alerts reach the broker: before or after the commit, whichever came first.
        assert wait_until(lambda: topic_size(kafka_bootstrap, pipeline.topics.sla_alerts) > 0, 60, every=0.05)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)

    second = subprocess.run(
        [NETTASK, "alerts", "run", "--max-seconds", "25"], env=env, capture_output=True, text=True, timeout=90
    )

    assert second.returncode == 0, second.stderr
    breaches = breach_records(pipeline, kafka_bootstrap)
    assert_one_alert_per_breach(pipeline, kafka_bootstrap, breaches, openings)


def test_follow_prints_every_committed_alert_as_one_json_line(pipeline, kafka_bootstrap, tmp_path):
    breaches_published(pipeline, kafka_bootstrap, tickets=2)
    env = component_env(pipeline, kafka_bootstrap, tmp_path)
    subprocess.run([NETTASK, "alerts", "run", "--max-seconds", "15"], env=env, check=True, timeout=90)

    shown = subprocess.run(
        [NETTASK, "alerts", "follow", "--from-beginning", "--format", "json", "--max-seconds", "5"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    rich = subprocess.run(
        [NETTASK, "alerts", "follow", "--from-beginning", "--max-seconds", "5"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip

    alerts = [SlaAlert.model_validate(json.loads(line)) for line in shown.stdout.splitlines()]
    assert {str(a.alert_id) for a in alerts} == expected_alert_ids(breach_records(pipeline, kafka_bootstrap))
    lines = rich.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("BREACH") for line in lines)
    assert {a.reference for a in alerts} == {line.split()[1] for line in lines}
