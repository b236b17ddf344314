"""Poison records: does one hostile record stop an intake? Each case is published before a valid plan.

    python -m bench.poison [--nettask PATH]

For each case, a topic of its own gets the hostile record and then a valid `SubscribePlan`; `nettask intake`
(PATH: any build of the engine) runs for 15 s. Printed per case: the exit code, whether the plan after the record
was stored, and the intake's last line. An intake that stopped on the record never stores the plan.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
from kafka import KafkaProducer

from bench.workload import subscriptions
from infra.kafka.bootstrap import bootstrap_servers
from infra.kafka.topics import ensure_topics
from infra.settings import Settings, TopicSettings

RUN_SECONDS = 15


class NotUtf8(str):
    """A header key whose bytes are not UTF-8: kafka-python encodes header keys with `.encode()`."""

    def encode(self, *_args, **_kwargs) -> bytes:  # type: ignore[override]
        return b"\xff\xfe"


def _response_at(instant: str) -> bytes:
    return orjson.dumps(
        {"type": "RecordResponse", "command_id": str(uuid.uuid4()), "occurred_at": instant, "actor": "agent",
         "ticket_id": str(uuid.uuid4())}
    )  # fmt: skip


CASES: dict[str, Callable[[KafkaProducer, str], object]] = {
    "occurred_at 9999-12-31T23:00:00-05:00": lambda p, t: p.send(
        t, key=b"k", value=_response_at("9999-12-31T23:00:00-05:00")
    ).get(10),  # fmt: skip
    "occurred_at 0001-01-01T00:00:00+05:00": lambda p, t: p.send(
        t, key=b"k", value=_response_at("0001-01-01T00:00:00+05:00")
    ).get(10),  # fmt: skip
    "a header key that is not UTF-8": lambda p, t: p.send(t, key=b"k", value=b"{}", headers=[(NotUtf8("x"), b"v")]).get(
        10
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nettask", default=str(Path(sys.executable).with_name("nettask")))
    options = parser.parse_args()
    bootstrap = bootstrap_servers(Settings())
    for name, send in CASES.items():
        print(f"{name:40s} {_probe(options.nettask, bootstrap, send)}")


def _probe(nettask: str, bootstrap: str, send: Callable[[KafkaProducer, str], object]) -> str:
    run = uuid.uuid4().hex[:8]
    topics = TopicSettings(
        commands=f"poison.{run}.commands", commands_dlq=f"poison.{run}.dlq", events=f"poison.{run}.events",
        sla_alerts=f"poison.{run}.alerts", partitions=1,
    )  # fmt: skip
    ensure_topics(bootstrap, topics, progress=lambda _line: None)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    send(producer, topics.commands)
    plan = subscriptions(run)[0]
    value = orjson.dumps(plan.model_dump(mode="json", exclude_none=True))
    producer.send(topics.commands, key=plan.key.encode(), value=value).get(10)
    producer.close()
    with tempfile.TemporaryDirectory() as scratch:
        store = Path(scratch) / "events.sqlite"
        env = {
            **os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "NETTASK_SQLITE_PATH": str(store),
            "NETTASK_VAR_DIR": scratch, "NETTASK_TOPIC_COMMANDS": topics.commands,
            "NETTASK_TOPIC_COMMANDS_DLQ": topics.commands_dlq, "NETTASK_TOPIC_EVENTS": topics.events,
            "NETTASK_INTAKE_GROUP": f"poison-{run}",
        }  # fmt: skip
        done = subprocess.run(
            [nettask, "intake", "--max-seconds", str(RUN_SECONDS)], env=env, capture_output=True, text=True,
            timeout=RUN_SECONDS + 60,
        )  # fmt: skip
        stored = _stored(store)
    last = (done.stderr.strip().splitlines() or [""])[-1][:120]
    return f"exit {done.returncode}, plan after it stored: {'yes' if stored else 'no'}; last line: {last}"


def _stored(store: Path) -> int:
    try:
        with sqlite3.connect(store) as connection:
            return connection.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]
    except sqlite3.Error:
        return 0


if __name__ == "__main__":
    main()
