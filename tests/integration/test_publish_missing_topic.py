"""Publishing to a topic that does not exist fails at once, in one line, and creates no topic."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from infra.kafka import topics
from producers.client import CommandPublisher, MissingTopic

pytestmark = pytest.mark.kafka

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "march-2026.jsonl"


def test_the_client_refuses_a_missing_topic_before_sending_and_the_topic_stays_missing(kafka_bootstrap):
    missing = f"test.missing.{uuid.uuid4().hex[:12]}"

    with pytest.raises(MissingTopic, match=f"topic {missing} does not exist on {kafka_bootstrap}"):
        CommandPublisher(kafka_bootstrap, missing)

    assert topics.describe(kafka_bootstrap, [missing]) == {}


def test_nettask_publish_to_a_missing_topic_fails_in_one_line_naming_topic_and_cluster(kafka_bootstrap, tmp_path):
    missing = f"test.missing.{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "NETTASK_TOPIC_COMMANDS": missing}
    nettask = Path(sys.executable).with_name("nettask")

    # The timeout only guards against a hang (it used to wait a minute for metadata); the test asserts no time.
    result = subprocess.run(
        [nettask, "publish", EXAMPLES], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: topic {missing} does not exist on {kafka_bootstrap}; "
        "create it with `nettask kafka topics` or set NETTASK_TOPIC_COMMANDS"
    ]
    assert "published" not in result.stdout
    assert topics.describe(kafka_bootstrap, [missing]) == {}
