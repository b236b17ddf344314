"""A backlog probe: plans and tickets published before any intake runs; how many end applied, how many refused.

    python -m bench.backlog [--tickets 1258] [--intakes 1] [--nettask PATH] [--seconds 90] [--bomb-mb 0]

Plans travel keyed by customer and tickets by ticket, so intakes read openings before the plans they need. The
commands are published first (20 plans, then 4 commands per ticket); then `nettask intake` processes (PATH: any
build of the engine, so that two builds can be compared on one broker) work the backlog off. Prints the stored
events, the dead letters by reason, and the peak memory of the intakes. With --bomb-mb, one gzip-compressed
value of that many megabytes of zeros (a few hundred KB on the wire) is published before the plans.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.workload import subscriptions, ticket_commands
from infra.kafka.bootstrap import bootstrap_servers
from infra.kafka.topics import ensure_topics
from infra.messages import DLQ_REASON, header
from infra.settings import Settings, TopicSettings

# A plan's or a ticket's id in a reason, so reasons group by what they say, not by which ticket.
IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}|bench-\w+-\d+|\d{4}-\d\d-\d\dT[\d:+.]+")


def main() -> None:
    options = _options()
    settings = Settings()
    bootstrap = bootstrap_servers(settings, progress=lambda line: print(line, file=sys.stderr))
    run = uuid.uuid4().hex[:8]
    topics = TopicSettings(
        commands=f"backlog.{run}.commands", commands_dlq=f"backlog.{run}.dlq", events=f"backlog.{run}.events",
        sla_alerts=f"backlog.{run}.alerts", partitions=6,
    )  # fmt: skip
    ensure_topics(bootstrap, topics, progress=lambda _line: None)
    commands = [*subscriptions(run), *ticket_commands(run, options.tickets)]
    if options.bomb_mb:
        _publish_bomb(bootstrap, topics.commands, options.bomb_mb)
    _publish(bootstrap, topics.commands, commands)
    with tempfile.TemporaryDirectory() as scratch:
        store = Path(scratch) / "events.sqlite"
        peak_kb = _run_intakes(options, bootstrap, topics, store, run)
        stored = _stored_events(store)
    letters = _dead_letters(bootstrap, topics.commands_dlq)
    print(f"{len(commands)} commands ({len(commands) - options.tickets * 4} plans) published before any intake ran")
    print(f"{options.intakes} intake(s) of {options.nettask}, {options.seconds:.0f} s")
    print(f"stored events: {stored}   dead letters: {sum(letters.values())}   peak RSS of an intake: "
          f"{peak_kb / 1024:.0f} MB")  # fmt: skip
    for reason, count in letters.most_common(8):
        print(f"  {count:6d}  {reason}")


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1258)
    parser.add_argument("--intakes", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=90.0, help="how long the intakes run")
    parser.add_argument("--nettask", default=str(Path(sys.executable).with_name("nettask")))
    parser.add_argument("--bomb-mb", type=int, default=0, help="publish a gzip bomb of this size first")
    return parser.parse_args()


def _publish(bootstrap: str, topic: str, commands: list) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    for command in commands:
        value = orjson.dumps(command.model_dump(mode="json", exclude_none=True))
        producer.send(topic, key=command.key.encode(), value=value)
    producer.flush()
    producer.close()


def _publish_bomb(bootstrap: str, topic: str, megabytes: int) -> None:
    size = megabytes * 1024 * 1024
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, compression_type="gzip", max_request_size=size + 1024 * 1024, linger_ms=0,
    )  # fmt: skip
    producer.send(topic, key=b"bomb", value=bytes(size)).get(timeout=120)
    producer.close()


def _run_intakes(options: argparse.Namespace, bootstrap: str, topics: TopicSettings, store: Path, run: str) -> int:
    env = {
        **os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "NETTASK_STORE": "sqlite",
        "NETTASK_SQLITE_PATH": str(store), "NETTASK_VAR_DIR": str(store.parent),
        "NETTASK_TOPIC_COMMANDS": topics.commands, "NETTASK_TOPIC_COMMANDS_DLQ": topics.commands_dlq,
        "NETTASK_TOPIC_EVENTS": topics.events, "NETTASK_TOPIC_SLA_ALERTS": topics.sla_alerts,
        "NETTASK_INTAKE_GROUP": f"backlog-{run}",
    }  # fmt: skip
    command = [options.nettask, "intake", "--max-seconds", str(options.seconds)]
    processes = []
    for _ in range(options.intakes):
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)  # one after the other: the first creates the store's tables
    peak_kb, deadline = 0, time.monotonic() + options.seconds + 60
    while any(p.poll() is None for p in processes) and time.monotonic() < deadline:
        peak_kb = max([peak_kb, *(_high_water_kb(p.pid) for p in processes)])
        time.sleep(0.05)
    for process in processes:
        process.kill()
        process.wait()
    return peak_kb


def _high_water_kb(pid: int) -> int:
    """The process's peak RSS so far, from /proc (getrusage's children figure starts at this process's own)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) if found else 0


def _stored_events(store: Path) -> int:
    with sqlite3.connect(store) as connection:
        return connection.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]


def _dead_letters(bootstrap: str, topic: str) -> collections.Counter:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    consumer.assign(partitions)
    ends = consumer.end_offsets(partitions)
    reasons: collections.Counter = collections.Counter()
    deadline = time.monotonic() + 60
    while sum(consumer.position(tp) for tp in partitions) < sum(ends.values()) and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            reasons.update(IDS.sub("…", header(r.headers, DLQ_REASON) or "") for r in batch)
    consumer.close()
    return reasons


if __name__ == "__main__":
    main()
