"""Projector throughput beside raw kafka-python consume + orjson.loads of the same topic, in one run.

    python -m bench.projector [--events 20000] [--stores sqlite,postgres]

The events are real: the bench workload's commands decided by the engine into a SQLite store and published by
the relay onto a topic of the run. Then, timed on the same topic: a raw consumer that reads and decodes every
record (the baseline), and the projector (every projection, one transaction per poll batch with its offsets)
into a fresh SQLite file and a fresh PostgreSQL schema. The design's target: at least 0.8x the raw rate.
"""

from __future__ import annotations

import argparse
import time
from contextlib import ExitStack

import orjson
from kafka import KafkaConsumer, TopicPartition
from rich.console import Console
from rich.table import Table

from bench.resources import Resources, StoreUnavailable
from bench.workload import COMMANDS_PER_TICKET, subscriptions, ticket_commands
from consumers.write_side import WriteSide
from infra.compose.components import build_projector, build_relay
from infra.compose.desk import build_desk
from infra.settings import Settings

PARTITIONS = 6
TARGET = 0.8
# Each phase ends by itself after this long even if it fell short, so a stuck run still prints what it got.
PHASE_TIMEOUT_S = 300


def main() -> None:
    options = _options()
    console = Console(stderr=True)
    with ExitStack() as stack:
        resources = Resources(stack, console.print)
        bootstrap, origin = resources.bootstrap()
        console.print(f"broker: {bootstrap} ({origin})")
        source = resources.store("sqlite", "source")
        source = source.model_copy(update={"topics": resources.topic_settings(bootstrap, "proj", PARTITIONS)})
        events = _fill(source, bootstrap, options.events, console)
        rows = [("raw consume + orjson.loads", _raw(bootstrap, source.topics.events, events))]
        for kind in options.stores.split(","):
            try:
                settings = _projection_settings(resources, source, kind)
            except StoreUnavailable as error:
                console.print(f"[yellow]{kind} left out: {error}")
                continue
            rows.append((f"projector into {kind}", _project(settings, bootstrap, events)))
    _report(rows, events)


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="about this many events (rounded to tickets)")
    parser.add_argument("--stores", default="sqlite,postgres")
    return parser.parse_args()


def _fill(settings: Settings, bootstrap: str, wanted: int, console: Console) -> int:
    """Decide the workload into the store and relay every stored event to the topic; returns how many."""
    run = settings.topics.events.split(".")[1]
    commands = [*subscriptions(run), *ticket_commands(run, max(1, wanted // COMMANDS_PER_TICKET))]
    desk = build_desk(settings)
    write_side = WriteSide(desk)
    for start in range(0, len(commands), 500):
        write_side.handle_batch(commands[start : start + 500])
    desk.close()
    relay, published = build_relay(settings, bootstrap), 0
    while count := relay.publish_page():
        published += count
    relay.close()
    console.print(f"{published} events on {settings.topics.events}")
    return published


def _raw(bootstrap: str, topic: str, expected: int) -> float:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=500)
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    seen, started, deadline = 0, time.perf_counter(), time.monotonic() + PHASE_TIMEOUT_S
    while seen < expected and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            for record in records:
                orjson.loads(record.value)
            seen += len(records)
    rate = seen / (time.perf_counter() - started)
    consumer.close()
    return rate


def _projection_settings(resources: Resources, source: Settings, kind: str) -> Settings:
    target = resources.store(kind, f"views_{kind}")
    return source.model_copy(
        update={
            "projections_store": kind,
            "projections_sqlite_path": resources.run_dir / f"projections-{kind}.sqlite",
            "projections_postgres_schema": target.postgres_schema,
            "projector_group": f"bench-projector-{resources.run}-{kind}",
        }
    )


def _project(settings: Settings, bootstrap: str, expected: int) -> float:
    projector = build_projector(settings, bootstrap)
    started = time.perf_counter()
    projector.run(max_messages=expected, max_seconds=PHASE_TIMEOUT_S)
    elapsed = time.perf_counter() - started
    handled = projector.stats.records
    projector.close()
    return handled / elapsed


def _report(rows: list[tuple[str, float]], events: int) -> None:
    raw = rows[0][1]
    table = Table(title=f"projector, {events} events, {PARTITIONS} partitions (ratios to raw in this run)")
    for column in ("stage", "events/s", "ratio", f"target {TARGET}x"):
        table.add_column(column)
    for name, rate in rows:
        ratio = rate / raw
        verdict = "" if name.startswith("raw") else ("met" if ratio >= TARGET else "missed")
        table.add_row(name, f"{rate:,.0f}", f"{ratio:.2f}x", verdict)
    Console().print(table)


if __name__ == "__main__":
    main()
