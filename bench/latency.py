"""Latency split by stage: command published -> event readable, and -> its SLA row visible, at a paced rate.

Intake, relay and projector run in threads of this process, as `nettask run` runs them; commands come from a
spawned process (bench/publisher.py). The stages come from instants each side can honestly know: the publisher's
send call and the broker's acknowledgement, the intake's and the relay's per-batch observers, a timer around the
desk's `save` (the store transaction), a consumer of the events topic, and a poller of the SLA view.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import orjson
from rich.table import Table

from bench import end_to_end, workload
from bench.measure import Screen
from bench.publisher import publish_timed
from bench.report import quiet_console
from bench.resources import Resources, StoreUnavailable
from consumers.projector import Projector
from infra.compose.components import StopFlag, build_intake, build_projector, build_relay
from infra.compose.projections import build_projection_database
from infra.messages import MESSAGE_ID, header
from infra.settings import Settings

# The design's targets for command published -> view row visible, at 60 % of sustained capacity.
TARGET_P50_MS, TARGET_P99_MS = 20.0, 100.0
PACED_SHARE = 0.6
WARM_UP_TIMEOUT_S = 60.0
# Every wait of a phase ends here at the latest; what is unseen by then counts as missing, not as a latency.
PHASE_TIMEOUT_S = 120.0
DRAIN_SECONDS = 30.0
# The SLA view is polled this often: a row is seen at most this late (half of it on average).
ROW_POLL_S = 0.002
STAGES = (
    ("publish", "send() call -> broker acknowledged"),
    ("intake busy", "acknowledged -> the intake's next poll call (0 if one was waiting)"),
    ("intake poll", "that poll call, or the ack if later -> poll returned"),
    ("decide", "polled -> store transaction begins (validate, load, decide)"),
    ("store commit", "store transaction (the desk's save)"),
    ("relay read", "committed -> read by the relay"),
    ("produce ack", "read by the relay -> page acknowledged"),
    ("readable", "acknowledged -> read by a consumer of tickets.events"),
    ("projector", "event readable -> SLA row visible"),
)


class StageClock:
    """The instants the pipeline's observers report, kept as they come and matched to commands after the run."""

    def __init__(self) -> None:
        self.batches: list[tuple[float, float, float, list[tuple[float, float]], list[Any]]] = []
        self.pages: list[tuple[float, float, list[Any]]] = []
        # Projection name -> (seconds, events) of each batch it applied.
        self.projections: dict[str, list[tuple[float, int]]] = {}
        self._saves: list[tuple[float, float]] = []
        self._poll_called = 0.0

    def timed_poll(self, poll: Callable[..., Any]) -> Callable[..., Any]:
        """The intake consumer's poll, noting when it was called: the batch the observer reports next came from
        the last call. Split from the ack, it tells a command that waited for the intake to finish the previous
        batch from one that waited for the poll's own round trips."""

        def timed(*args: Any, **options: Any) -> Any:
            self._poll_called = time.monotonic()
            return poll(*args, **options)

        return timed

    def timed_save(self, save: Callable[..., Any]) -> Callable[..., Any]:
        """The desk's save, timed: it runs on the intake's thread, inside the batch the observer reports next."""

        def timed(*aggregates: Any, **options: Any) -> Any:
            started = time.monotonic()
            try:
                return save(*aggregates, **options)
            finally:
                self._saves.append((started, time.monotonic()))

        return timed

    def timed_projection(self, name: str, apply: Callable[..., Any]) -> Callable[..., Any]:
        """A projection's apply, timed: where the projector's time per batch goes."""

        def timed(cursor: Any, events: Any, **options: Any) -> Any:
            started = time.monotonic()
            try:
                return apply(cursor, events, **options)
            finally:
                self.projections.setdefault(name, []).append((time.monotonic() - started, len(events)))

        return timed

    def timed_refresh(self, name: str, refresh: Callable[[], int]) -> Callable[[], int]:
        """A projection's deferred work (billing's statements), timed: it is the projector's time too."""

        def timed() -> int:
            started = time.monotonic()
            done = 0
            try:
                done = refresh()
                return done
            finally:
                if done:  # a refresh with nothing marked takes no transaction: not a batch of work
                    self.projections.setdefault(f"{name} refresh", []).append((time.monotonic() - started, done))

        return timed

    def batch(self, polled_at: float, stored_at: float, records: list[Any]) -> None:
        saves, self._saves = self._saves, []
        # A consumer built anew on a rejoin is not timed: its batches count from their poll's return.
        poll_called, self._poll_called = self._poll_called or polled_at, 0.0
        self.batches.append((poll_called, polled_at, stored_at, saves, records))

    def page(self, read_at: float, acked_at: float, messages: list[Any]) -> None:
        self.pages.append((read_at, acked_at, messages))

    def intake_times(self, wall_to_monotonic: float) -> dict[str, tuple[float, float, float, float, float]]:
        """command id -> (record CreateTime, poll called, polled, store transaction begun, committed), monotonic
        seconds."""
        found = {}
        for poll_called, polled_at, stored_at, saves, records in self.batches:
            begun, committed = (saves[0][0], saves[-1][1]) if saves else (stored_at, stored_at)
            for record in records:
                created = record.timestamp / 1000 - wall_to_monotonic
                found[header(record.headers, MESSAGE_ID)] = (created, poll_called, polled_at, begun, committed)
        return found

    def relay_times(self) -> dict[str, tuple[float, float]]:
        """command id -> (read by the relay, acknowledged), of the first event the command stored."""
        found: dict[str, tuple[float, float]] = {}
        for read_at, acked_at, messages in self.pages:
            for message in messages:
                command_id = orjson.loads(message.value).get("command_id")
                found.setdefault(command_id, (read_at, acked_at))
        return found


class RowWatch:
    """Polls the SLA view by ticket id for the events a consumer of the topic has seen, noting when each
    command's row became visible (its ticket's row at the event's stream version or later)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.visible: dict[str, float] = {}
        self._pending: dict[str, list[tuple[int, str]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="row-watch", daemon=True)

    def start(self) -> RowWatch:
        self._thread.start()
        return self

    def expect(self, command_id: str, ticket_id: str | None, version: int, _readable_at: float) -> None:
        if ticket_id is not None:
            with self._lock:
                self._pending.setdefault(ticket_id, []).append((version, command_id))

    def _read(self) -> None:
        db = build_projection_database(self.settings)  # a connection of this thread's own
        select = "SELECT ticket_id, version FROM {table} WHERE ticket_id IN ({marks})"
        try:
            while not self._stop.wait(ROW_POLL_S):
                with self._lock:
                    tickets = list(self._pending)
                if tickets:
                    rows = db.query(select.format(table=db.table("sla_tickets"), marks=db.marks(len(tickets))), tickets)
                    self._resolve(rows, time.monotonic())
        finally:
            db.close()

    def _resolve(self, rows: list[tuple], seen_at: float) -> None:
        with self._lock:
            for ticket_id, version in rows:
                waiting = self._pending.pop(ticket_id, [])
                for expected, command_id in waiting:
                    if expected <= version:
                        self.visible[command_id] = seen_at
                left = [(v, c) for v, c in waiting if v > version]
                if left:
                    self._pending[ticket_id] = left

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class Components:
    """Intake, relay and projector in threads of this process, as `nettask run` runs them, with observers."""

    def __init__(self, settings: Settings, bootstrap: str, clock: StageClock, billing_apart: bool = False):
        stored = threading.Event()  # the intake wakes the relay the moment it stored something
        self.intake = build_intake(settings, bootstrap, stored)
        self.relay = build_relay(settings, bootstrap, stored)
        self.projector = build_projector(settings, bootstrap)
        named = [("intake", self.intake), ("relay", self.relay), ("projector", self.projector)]
        if billing_apart:  # an experiment: billing in a projector (and consumer group) of its own
            named.append(("billing-projector", _billing_apart(self.projector, settings, bootstrap)))
        self.components = [component for _, component in named]
        self.intake.on_batch, self.relay.on_page = clock.batch, clock.page
        self.intake.desk.save = clock.timed_save(self.intake.desk.save)
        self.intake.consumer.poll = clock.timed_poll(self.intake.consumer.poll)
        for projector in self.components[2:]:
            for projection in projector.projections:
                projection.apply = clock.timed_projection(projection.name, projection.apply)
                if callable(getattr(projection, "refresh", None)):
                    projection.refresh = clock.timed_refresh(projection.name, projection.refresh)
        self.stop_flag = StopFlag()
        self._threads = [
            threading.Thread(target=component.run, kwargs={"stop": self.stop_flag}, name=name, daemon=True)
            for name, component in named
        ]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        self.stop_flag.set()
        for thread in self._threads:
            thread.join(timeout=30)
        for component in self.components:
            component.close()


def _billing_apart(projector: Projector, settings: Settings, bootstrap: str) -> Projector:
    """Billing taken out of `projector` and given a projector of its own, in a group of its own."""
    projector.projections = [p for p in projector.projections if p.name != "billing"]
    billing = build_projector(settings, bootstrap, group=f"{settings.projector_group}-billing")
    billing.projections = [p for p in billing.projections if p.name == "billing"]
    return billing


@dataclass
class Run:
    """One store's figures: capacity, the paced rate, and per command the instants of every stage."""

    store: str
    capacity: float = 0.0
    rate: float = 0.0
    published: int = 0
    stages: dict[str, list[float]] = field(default_factory=dict)
    to_event: list[float] = field(default_factory=list)
    to_row: list[float] = field(default_factory=list)
    created_to_polled: list[float] = field(default_factory=list)
    windows: dict[str, int] = field(default_factory=dict)
    projections: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    error: str | None = None


def measure_store(kind: str, args: argparse.Namespace, resources: Resources, bootstrap: str, screen: Screen) -> Run:
    """Warm up, a burst for capacity (to the last SLA row visible), then the paced run that is measured."""
    run = Run(kind)
    settings = _settings(resources, bootstrap, kind, args.partitions)
    clock, rows = StageClock(), RowWatch(settings)
    with ExitStack() as stack:
        components = Components(settings, bootstrap, clock, args.billing_apart)
        stack.callback(components.close)
        watch = end_to_end.EventWatch(bootstrap, settings.topics.events, args.partitions, rows.expect).start()
        stack.callback(watch.stop)
        stack.callback(rows.start().stop)
        topic, label = settings.topics.commands, resources.run
        end_to_end.warm_up(bootstrap, topic, watch, workload.messages(workload.subscriptions(label)), WARM_UP_TIMEOUT_S)
        burst = workload.messages(workload.ticket_commands(label, max(1, args.commands // 4), "b"))
        screen.say(f"{kind}: burst of {len(burst):,} commands, timed to the last SLA row visible")
        sent, _ = publish_timed(bootstrap, topic, _wire(burst), None, args.phase_timeout)
        if not _wait(rows.visible, list(sent), args.phase_timeout):
            stats = components.projector.stats
            run.error = (
                f"the burst's SLA rows were not all visible within {args.phase_timeout:.0f} s: "
                f"{sum(i in rows.visible for i in sent):,} of {len(sent):,} (events readable "
                f"{sum(i in watch.seen for i in sent):,}; projector records {stats.records:,}, "
                f"dead letters {stats.dead_letters:,})"
            )
            return run
        run.capacity = len(sent) / (max(rows.visible[i] for i in sent) - min(sent.values()))
        run.rate = args.paced_rate or PACED_SHARE * run.capacity
        tickets = max(1, int(run.rate * args.paced_seconds) // workload.COMMANDS_PER_TICKET)
        paced = workload.messages(workload.ticket_commands(label, tickets, "p"))
        screen.say(f"{kind}: capacity {run.capacity:,.0f} cmd/s; paced run of {len(paced):,} at {run.rate:,.0f}/s")
        wall_to_monotonic = time.time() - time.monotonic()
        clock.projections.clear()  # the paced run's batches only
        sent, acked = publish_timed(bootstrap, topic, _wire(paced), run.rate, args.paced_seconds * 2)
        _wait(rows.visible, list(sent), DRAIN_SECONDS)
        _collect(run, sent, acked, clock, watch.seen, rows.visible, wall_to_monotonic)
        run.windows = _windows(clock, components, len(sent))
        run.projections = dict(clock.projections)
    return run


def _collect(run: Run, sent: dict, acked: dict, clock: StageClock, readable: dict, visible: dict, offset: float):
    """Per paced command, every stage's duration; a command some side never saw is left out of that stage."""
    intake, relay = clock.intake_times(offset), clock.relay_times()
    run.published = len(sent)
    run.stages = {name: [] for name, _ in STAGES}
    for command_id, sent_at in sent.items():
        marks = _marks(command_id, sent_at, acked, intake, relay, readable, visible)
        for (name, _), (start, end) in zip(STAGES, zip(marks, marks[1:], strict=False), strict=True):
            if start is not None and end is not None:
                run.stages[name].append(end - start)
        if command_id in readable:
            run.to_event.append(readable[command_id] - sent_at)
        if command_id in visible:
            run.to_row.append(visible[command_id] - sent_at)
        if command_id in intake:
            created, _, polled, *_ = intake[command_id]
            run.created_to_polled.append(polled - created)


def _marks(command_id, sent_at, acked, intake, relay, readable, visible) -> list[float | None]:
    """sent, acked, intake poll under way, polled, store begun, committed, relay read, relay acked, readable, row
    visible. The poll is under way from its call, or from the ack if a poll was already waiting then."""
    _, poll_called, polled, begun, committed = intake.get(command_id, (None,) * 5)
    read, page_acked = relay.get(command_id, (None, None))
    acked_at = acked.get(command_id)
    polling = None if acked_at is None or poll_called is None else max(acked_at, poll_called)
    return [
        sent_at, acked_at, polling, polled, begun, committed, read, page_acked,
        readable.get(command_id), visible.get(command_id),
    ]  # fmt: skip


def _windows(clock: StageClock, components: Components, commands: int) -> dict[str, int]:
    """How the paced commands were grouped: intake batches and relay pages of the whole run, for context."""
    return {
        "intake batches": components.intake.stats.batches,
        "relay pages": components.relay.stats.pages,
        "projector batches": components.projector.stats.batches,
        "paced commands": commands,
    }


def _settings(resources: Resources, bootstrap: str, kind: str, partitions: int) -> Settings:
    label = f"{kind}_latency"
    run = resources.run
    overrides = {
        "topics": resources.topic_settings(bootstrap, label, partitions),
        "intake_group": f"bench-{run}-{label}",
        "projector_group": f"bench-{run}-{label}-projector",
        "relay_name": f"bench-{run}-{label}",
    }
    if kind == "sqlite":
        overrides["projections_sqlite_path"] = resources.run_dir / f"{label}-projections.sqlite"
    return resources.store(kind, label, **overrides)


def _wire(messages: list[workload.Message]) -> list:
    return [(m.key, m.value, m.headers, m.command_id) for m in messages]


def _wait(seen: dict[str, float], ids: list[str], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while any(i not in seen for i in ids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def table(runs: list[Run]) -> Table:
    result = Table(title="Latency by stage at the paced rate (ms)", caption=_caption(runs))
    result.add_column("stage")
    result.add_column("from -> to")
    for run in runs:
        result.add_column(f"{run.store} p50", justify="right")
        result.add_column(f"{run.store} p99", justify="right")
    for name, span in STAGES:
        result.add_row(name, span, *_cells(run.stages.get(name, []) for run in runs))
    result.add_row("(record CreateTime -> polled)", "overlaps publish", *_cells(r.created_to_polled for r in runs))
    result.add_section()
    result.add_row("[bold]command -> event readable", "target p50 20, p99 100", *_cells(r.to_event for r in runs))
    result.add_row("[bold]command -> SLA row visible", "target p50 20, p99 100", *_cells(r.to_row for r in runs))
    return result


def projection_table(runs: list[Run]) -> Table:
    """Where the projector's time goes during the paced run: each projection's apply per batch."""
    result = Table(title="Projector during the paced run: each projection's apply per batch (ms)")
    for column in ("store", "projection", "batches", "events per batch p50", "p50", "p99", "total s"):
        result.add_column(column, justify="left" if column in ("store", "projection") else "right")
    for run in runs:
        for name, batches in run.projections.items():
            seconds = [s for s, _ in batches]
            sizes = sorted(n for _, n in batches)
            result.add_row(
                run.store, name, f"{len(batches):,}", f"{sizes[len(sizes) // 2]:,}", *_cells([seconds]),
                f"{sum(seconds):,.2f}",
            )  # fmt: skip
    return result


def _cells(series) -> list[str]:
    cells = []
    for samples in series:
        samples = list(samples)
        cells += [f"{percentile(samples, 0.5) * 1000:,.1f}", f"{percentile(samples, 0.99) * 1000:,.1f}"]
    return cells


def _caption(runs: list[Run]) -> str:
    parts = []
    for run in runs:
        seen = f"{len(run.to_row):,} of {run.published:,} rows seen" if not run.error else run.error
        windows = ", ".join(f"{k} {v:,}" for k, v in run.windows.items())
        parts.append(f"{run.store}: capacity {run.capacity:,.0f} cmd/s, paced {run.rate:,.0f}/s, {seen}; {windows}")
    return "\n".join(parts)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--commands", type=int, default=4000, help="commands of the capacity burst (default 4,000)")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--paced-seconds", type=float, default=10.0, help="length of the paced run (default 10)")
    parser.add_argument("--paced-rate", type=float, default=None, help="commands/s (default: 60%% of capacity)")
    parser.add_argument("--phase-timeout", type=float, default=PHASE_TIMEOUT_S)
    parser.add_argument(
        "--billing-apart", action="store_true", help="experiment: billing in a projector and group of its own"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = quiet_console()
    stores = ("sqlite", "postgres") if args.store == "both" else (args.store,)
    runs = []
    with ExitStack() as stack, Screen(console) as screen:
        resources = Resources(stack, screen.say)
        bootstrap, origin = resources.bootstrap()
        s = Settings()
        console.print(
            f"[bold]bench.latency[/]: broker {bootstrap} ({origin}); {os.cpu_count()} CPU(s); settings as configured: "
            f"intake_batch={s.intake_batch}, relay_page={s.relay_page}, idle_wait_ms={s.idle_wait_ms}, "
            f"projector_batch={s.projector_batch}; load average {_load()}",
            highlight=False,
        )
        for kind in stores:
            try:
                runs.append(measure_store(kind, args, resources, bootstrap, screen))
            except (StoreUnavailable, end_to_end.WarmUpFailed) as error:
                runs.append(Run(kind, error=str(error)))
    console.print(table(runs))
    console.print(projection_table(runs))
    console.print(f"load average at the end: {_load()}", highlight=False)
    return 0


def _load() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


if __name__ == "__main__":
    raise SystemExit(main())
