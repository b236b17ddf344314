"""Two intakes at once against a hostile corpus on the real broker: both stay up, every valid command is applied,
every hostile record is on the DLQ with its kind, reason and source, and bombs do not inflate the process."""

from __future__ import annotations

import os
import resource
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.serializer import Serializer

from domain import commands as c
from infra.compose.components import build_intake
from infra.compose.desk import build_desk
from infra.messages import DLQ_KIND, DLQ_REASON, DLQ_SOURCE, header
from infra.settings import Settings
from tests.hostile_corpus import Corpus, Entry, valid
from tests.integration.helpers import delete_pipeline_topics, pipeline_settings, read_all, stored_log, subscribe

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SEED = 20261127
CUSTOMERS = 3
# Low, so every bomb is one; a valid batch of commands stays far below it.
MAX_BATCH_BYTES = 2 * 1024 * 1024
# A valid opening may meet its customer's plan only a little later (other partition, other intake).
PARK_SECONDS = 5.0
RUN_SECONDS = 240.0
# The unbounded decompression cost about 1 GB; the bounded one a few MiB a batch.
MAX_RSS_GROWTH = 300 * 1024 * 1024
BIG_REQUEST = 64 * 1024 * 1024


@pytest.fixture
def hostile_settings(store_settings: Settings, kafka_bootstrap: str):
    settings = pipeline_settings(store_settings, kafka_bootstrap).model_copy(
        update={"max_batch_bytes": MAX_BATCH_BYTES, "park_max_seconds": PARK_SECONDS}
    )
    yield settings
    delete_pipeline_topics(kafka_bootstrap, settings)


def test_two_intakes_survive_a_hostile_corpus_apply_every_valid_command_and_dead_letter_the_rest(
    hostile_settings, kafka_bootstrap, tmp_path
):
    settings, topic = hostile_settings, hostile_settings.topics.commands
    plans = [subscribe(f"cust-hostile-{n}-{os.getpid()}") for n in range(CUSTOMERS)]
    corpus = Corpus(SEED, [p.customer_id for p in plans], settings.max_command_bytes)
    entries = corpus.entries() + corpus.compressed_valid() + corpus.bombs()
    runs = [IntakeRun(settings, kafka_bootstrap) for _ in range(2)]
    try:
        # Both in the group with partitions of their own before anything is published: two intakes at once.
        wait_until(lambda: all(r.intake.consumer.assignment() for r in runs), 60, alive=lambda: True)
        placed = publish_entries(kafka_bootstrap, topic, [plan_entry(p) for p in plans]) + publish_entries(
            kafka_bootstrap, topic, entries
        )
        hostile = [(entry, where) for entry, where in placed if not entry.valid]
        applied = [entry.command for entry, _ in placed if entry.valid]
        # From here on the intakes' work only: the bombs were published last, in this process too.
        rss = RssWatch()
        wait_until(lambda: all_stored(settings, applied) and all_dead_lettered(kafka_bootstrap, settings, hostile),
                   RUN_SECONDS, alive=lambda: all(r.thread.is_alive() for r in runs))  # fmt: skip
        assert all(run.thread.is_alive() for run in runs), [run.errors for run in runs]
    finally:
        for run in runs:
            run.finish()
    rss.stop()
    print(f"\n{len(placed)} records, {len(hostile)} hostile; {rss}; ru_maxrss {rss.maxrss_kib // 1024} MiB")

    assert [run.errors for run in runs] == [[], []]
    print(f"intakes: {[run.stats for run in runs]}")
    assert all(run.stats.batches for run in runs), "one intake never had work: not two intakes at once"
    assert_dead_lettered(kafka_bootstrap, settings, hostile)
    assert_same_as_a_cold_replay(settings, applied, tmp_path / "replay.sqlite")
    assert rss.growth < MAX_RSS_GROWTH, rss


# --- publishing --------------------------------------------------------------------------------------------


def plan_entry(plan: c.SubscribePlan) -> Entry:
    return valid(f"plan-{plan.customer_id}", plan)


class _AnyKey(Serializer):
    """Lets a record with neither key nor value through kafka-python's check (other clients send those)."""

    def serialize(self, topic, headers, data):
        return None if data is _NO_KEY else data


_NO_KEY = object()


def publish_entries(bootstrap: str, topic: str, entries: list[Entry]) -> list[tuple[Entry, tuple[int, int]]]:
    """Publish in order, each codec's records by a producer of its own; returns each entry with its partition and
    offset. Plain records go together, so unreadable ones share batches with valid ones."""
    producers: dict[str | None, KafkaProducer] = {}
    try:
        sends = [(entry, _producer(producers, bootstrap, entry.codec).send(
            topic, key=_NO_KEY if entry.key is None else entry.key, value=entry.value, headers=list(entry.headers)
        )) for entry in entries]  # fmt: skip
        for producer in producers.values():
            producer.flush(timeout=120)
        return [(entry, _placed(send.get(timeout=60))) for entry, send in sends]
    finally:
        for producer in producers.values():
            producer.close(timeout=10)


def _producer(producers: dict, bootstrap: str, codec: str | None) -> KafkaProducer:
    if codec not in producers:
        producers[codec] = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=20, compression_type=codec, key_serializer=_AnyKey(),
            max_request_size=BIG_REQUEST,
        )  # fmt: skip
    return producers[codec]


def _placed(metadata) -> tuple[int, int]:
    return metadata.partition, metadata.offset


# --- two intakes in threads, their errors recorded --------------------------------------------------------


class IntakeRun:
    """An intake running in a thread of its own until `finish()`; whatever it raises is kept, not lost."""

    def __init__(self, settings: Settings, bootstrap: str):
        self.intake = build_intake(settings, bootstrap)
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def stats(self):
        return self.intake.stats

    def _run(self) -> None:
        try:
            self.intake.run(stop=self.stop.is_set, max_seconds=RUN_SECONDS + 60)
        except BaseException as error:  # the test reports it; the intake must never get here
            self.errors.append(error)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
        self.intake.close()


def wait_until(done: Callable[[], bool], seconds: float, alive: Callable[[], bool]) -> None:
    """Poll `done` every second, at most `seconds` long, giving up early when an intake died."""
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds) + 1):
        if done() or not alive() or time.monotonic() > deadline:
            return
        time.sleep(1.0)


# --- what the store and the DLQ must hold -------------------------------------------------------------------


def all_stored(settings: Settings, applied: list[c.Command]) -> bool:
    stored = {n.originator_id for n in stored_log(settings)}
    return all(_stream(command) in stored for command in applied)


def _stream(command: c.Command):
    return c.customer_stream_id(command.customer_id) if isinstance(command, c.SubscribePlan) else command.ticket_id


def dead_letter_sources(bootstrap: str, settings: Settings, expected: int):
    letters = read_all(bootstrap, settings.topics.commands_dlq, expected, timeout_s=10)
    return letters, Counter(header(letter.headers, DLQ_SOURCE) for letter in letters)


def all_dead_lettered(bootstrap: str, settings: Settings, hostile) -> bool:
    _, sources = dead_letter_sources(bootstrap, settings, len(hostile))
    return all(_source(settings, where) in sources for _, where in hostile)


def _source(settings: Settings, where: tuple[int, int]) -> str:
    return f"{settings.topics.commands}/{where[0]}/{where[1]}"


def assert_dead_lettered(bootstrap: str, settings: Settings, hostile) -> None:
    """Each hostile record is on the DLQ (repeats allowed, at least once) with a kind it expects, a reason, and its
    value as it came; what kafka-python cannot read arrives without one."""
    letters, sources = dead_letter_sources(bootstrap, settings, len(hostile))
    by_source = {header(letter.headers, DLQ_SOURCE): letter for letter in letters}
    missing = [entry.name for entry, where in hostile if _source(settings, where) not in sources]
    assert not missing, f"{len(missing)} hostile records not dead-lettered: {missing[:20]}"
    for entry, where in hostile:
        letter = by_source[_source(settings, where)]
        kind, reason = header(letter.headers, DLQ_KIND), header(letter.headers, DLQ_REASON)
        assert kind in entry.kinds, (entry.name, kind, reason)
        assert reason, entry.name
        if kind == "unreadable" or entry.codec:
            assert letter.value is None, entry.name
        else:  # a value too large for the DLQ is cut to its first 256 KiB
            assert letter.value == entry.value or entry.value.startswith(letter.value or b"-"), entry.name
    print(
        f"dead letters: {len(letters)} for {len(hostile)} hostile records, by kind: "
        f"{dict(Counter(header(letter.headers, DLQ_KIND) for letter in by_source.values()))}"
    )


def assert_same_as_a_cold_replay(settings: Settings, applied: list[c.Command], replay_file: Path) -> None:
    """The store holds exactly the events a fresh desk records for the valid commands alone, in publishing order."""
    desk = build_desk(Settings(store="sqlite", sqlite_path=replay_file, var_dir=replay_file.parent))
    try:
        for command in applied:
            outcome = desk.handle(command)
            assert outcome.status == "applied", (command, outcome.reason)
    finally:
        desk.close()
    replayed = stored_log(Settings(store="sqlite", sqlite_path=replay_file, var_dir=replay_file.parent))
    stored = stored_log(settings)
    assert Counter(_fact(n) for n in stored) == Counter(_fact(n) for n in replayed)


def _fact(notification) -> tuple:
    return notification.originator_id, notification.originator_version, notification.topic


class RssWatch:
    """The process's resident memory sampled in a thread: its growth over the level when the watch began."""

    def __init__(self, every: float = 0.05):
        self.start = self.peak = _rss()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._sample, args=(every,), daemon=True)
        self.thread.start()

    def _sample(self, every: float) -> None:
        while not self.stopped.wait(every):
            self.peak = max(self.peak, _rss())

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)

    @property
    def growth(self) -> int:
        return self.peak - self.start

    @property
    def maxrss_kib(self) -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def __str__(self) -> str:
        return f"RSS {self.start // 2**20} MiB at start, peak {self.peak // 2**20} MiB (+{self.growth // 2**20} MiB)"


def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
