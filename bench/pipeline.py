"""`python -m bench.pipeline`: raw Kafka and event-store rates, then intake, relay and end to end, in one run."""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
from contextlib import ExitStack, nullcontext
from importlib.metadata import version

from rich.console import Console

from bench import end_to_end, raw, report, stages, workload
from bench.measure import Measure, Screen
from bench.report import Results, StoreResults, quiet_console
from bench.resources import Resources, StoreUnavailable
from bench.sampler import StackSampler
from infra.compose.components import build_intake, build_relay
from infra.settings import Settings

# Every phase stops at this bound and reports what it got through; the brief's numbers fit well inside it.
PHASE_TIMEOUT_S = 120.0
WARM_UP_TIMEOUT_S = 60.0
RAW_SINGLE_SAVES = 3000
BATCHED_SAVE_SIZE = 100
# The paced run lasts about this long, at this share of the measured end-to-end capacity (as the design asks).
PACED_SECONDS = 10.0
PACED_SHARE = 0.6


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__)
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--commands", type=int, default=20_000, help="commands per stage (default 20,000)")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of every topic (default 6)")
    parser.add_argument("--phase-timeout", type=float, default=PHASE_TIMEOUT_S, help="seconds per phase")
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=None,
        help="commands/s for the paced end-to-end run (default: 60%% of the measured capacity)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile the intake and relay stages with cProfile (slows them: rates not comparable)",
    )
    return parser.parse_args(argv)


class Bench:
    """One run: the resources it made, the screen, the options, and the results so far."""

    def __init__(self, args: argparse.Namespace, resources: Resources, screen: Screen, bootstrap: str):
        self.args = args
        self.resources = resources
        self.screen = screen
        self.bootstrap = bootstrap
        self.results = Results()
        self.profiles: dict[str, cProfile.Profile] = {}
        self.samplers: dict[str, StackSampler] = {}
        # The current store's consumers, producers and threads: closed when its phases end.
        self.components = resources.stack

    def phase(self, name: str, expected: int, timeout: float | None = None):
        return self.screen.phase(name, expected, timeout or self.args.phase_timeout)

    def profiler(self, name: str) -> cProfile.Profile | None:
        if not self.args.profile:
            return None
        return self.profiles.setdefault(name, cProfile.Profile())

    def sampler(self, name: str, threads: tuple[str, ...]) -> StackSampler | nullcontext:
        if not self.args.profile:
            return nullcontext()
        return self.samplers.setdefault(name, StackSampler(threads))


def run_raw_kafka(bench: Bench) -> None:
    """1 and 2: kafka-python alone, on a topic of its own."""
    n, partitions = bench.args.commands, bench.args.partitions
    values = workload.raw_values(n)
    # A broker just started still compiles its hot paths: one untimed pass, so raw rates are not understated.
    warm_up = bench.resources.topic(bench.bootstrap, "warm-up", partitions)
    raw.produce(bench.bootstrap, warm_up, values, bench.phase("broker warm-up (untimed)", n))
    topic = bench.resources.topic(bench.bootstrap, "raw", partitions)
    bench.results.produce = raw.produce(bench.bootstrap, topic, values, bench.phase("raw produce", n))
    bench.results.consume = raw.consume(bench.bootstrap, topic, partitions, bench.phase("raw consume", n))


def run_store(bench: Bench, kind: str) -> None:
    """3 to 6 on one store; a store that cannot be reached is reported, not fatal.

    The store's components are closed before the next store's phases start, so they take no CPU from them.
    """
    results = StoreResults(kind)
    bench.results.stores.append(results)
    bench.screen.say(f"{kind}: load average {_load()}")
    with ExitStack() as components:
        bench.components = components
        try:
            run_raw_saves(bench, kind, results)
            run_intake_and_relay(bench, kind, results)
            run_end_to_end(bench, kind, results)
        except (StoreUnavailable, stages.WarmUpFailed) as error:
            results.error = str(error)
            bench.results.errors.append(f"{kind}: {error}")
            bench.screen.say(f"[red]{kind}: {error}[/]")


def run_raw_saves(bench: Bench, kind: str, results: StoreResults) -> None:
    """3: the library's own Aggregate, one per transaction, then 100 per transaction."""
    single = min(bench.args.commands, RAW_SINGLE_SAVES)
    settings = bench.resources.store(kind, "raw_single")
    results.save_single = raw.saves(settings, 1, bench.phase(f"{kind}: raw save 1/txn", single))
    settings = bench.resources.store(kind, "raw_batched")
    phase = bench.phase(f"{kind}: raw save {BATCHED_SAVE_SIZE}/txn", bench.args.commands)
    results.save_batched = raw.saves(settings, BATCHED_SAVE_SIZE, phase)


def component_settings(bench: Bench, kind: str, stage: str) -> Settings:
    """A fresh store, topics and consumer group of their own; every tuning setting as configured."""
    label = f"{kind}_{stage}"
    topic_settings = bench.resources.topic_settings(bench.bootstrap, label, bench.args.partitions)
    run = bench.resources.run
    return bench.resources.store(
        kind, label, topics=topic_settings, intake_group=f"bench-{run}-{label}", relay_name=f"bench-{run}-{label}"
    )


def run_intake_and_relay(bench: Bench, kind: str, results: StoreResults) -> None:
    """4 and 5: subscriptions applied untimed, then N commands published, consumed and stored, then relayed."""
    settings, run = component_settings(bench, kind, "stages"), bench.resources.run
    intake = build_intake(settings, bench.bootstrap)
    bench.components.callback(intake.close)
    producer = stages.command_producer(bench.bootstrap)
    bench.components.callback(producer.close)
    # Untimed: the customers' plans (stored before any ticket, which may be on another partition), then one
    # ticket's life, which loads the business calendar and its holidays.
    warm_up = 0
    for step in (workload.subscriptions(run), workload.ticket_commands(run, 1, "w")):
        stages.publish(producer, settings.topics.commands, workload.messages(step))
        stages.warm_up_intake(intake, len(step), WARM_UP_TIMEOUT_S)
        warm_up += len(step)
    before = stages.stored_events(intake)
    commands = workload.messages(workload.ticket_commands(run, bench.args.commands // 4))
    stages.publish(producer, settings.topics.commands, commands)
    phase = bench.phase(f"{kind}: intake", len(commands))
    results.intake = stages.run_intake(intake, phase, bench.profiler(f"intake on {kind}"))
    stored = stages.stored_events(intake) - before
    results.intake_events = Measure(stored, stored, results.intake.seconds)
    _check_intake(bench, kind, intake, warm_up)
    run_relay(bench, kind, settings, stages.stored_events(intake), results)


def _check_intake(bench: Bench, kind: str, intake, warm_up: int) -> None:
    stats = intake.stats
    bench.screen.say(
        f"{kind}: intake outcomes: {stats.applied - warm_up:,} applied (+{warm_up} warm-up), "
        f"{stats.unchanged} repeats, {stats.refused} refused, {stats.invalid} invalid, "
        f"{stats.batches} batches"
    )
    if stats.refused or stats.invalid:
        bench.results.errors.append(f"{kind}: intake refused {stats.refused} and rejected {stats.invalid} commands")


def run_relay(bench: Bench, kind: str, settings: Settings, total: int, results: StoreResults) -> None:
    """Raw produce again, then the relay: the two sides of its ratio a few seconds apart."""
    n = bench.args.commands
    topic = bench.resources.topic(bench.bootstrap, f"{kind}_raw", bench.args.partitions)
    phase = bench.phase(f"{kind}: raw produce", n)
    results.produce = raw.produce(bench.bootstrap, topic, workload.raw_values(n), phase)
    relay = build_relay(settings, bench.bootstrap)
    bench.components.callback(relay.close)
    phase = bench.phase(f"{kind}: relay", total)
    results.relay = stages.run_relay(relay, phase, bench.profiler(f"relay on {kind}"))


def run_end_to_end(bench: Bench, kind: str, results: StoreResults) -> None:
    """6: a fresh store and topics; intake and relay in threads; a burst for capacity, then a paced run."""
    settings = component_settings(bench, kind, "e2e")
    stack, run = bench.components, bench.resources.run
    watch = end_to_end.EventWatch(bench.bootstrap, settings.topics.events, bench.args.partitions).start()
    stack.callback(watch.stop)
    pipeline = end_to_end.Pipeline(settings, bench.bootstrap).start()
    stack.callback(pipeline.close)
    topic = settings.topics.commands
    end_to_end.warm_up(bench.bootstrap, topic, watch, workload.messages(workload.subscriptions(run)), WARM_UP_TIMEOUT_S)
    messages = workload.messages(workload.ticket_commands(run, bench.args.commands // 4, "b"))
    results.burst = end_to_end.burst(
        bench.bootstrap, topic, watch, messages, bench.phase(f"{kind}: e2e burst", len(messages))
    )
    if results.burst.partial:
        # A backlog left by the burst would be measured as latency, so the paced run would mean nothing.
        bench.screen.say(f"[red]{kind}: the burst did not drain in time, so no paced latency run[/]")
        return
    capacity = min(results.burst.rate, results.intake.rate if results.intake else results.burst.rate)
    rate = bench.args.paced_rate or PACED_SHARE * capacity
    tickets = max(1, min(bench.args.commands, int(rate * PACED_SECONDS)) // 4)
    paced = workload.messages(workload.ticket_commands(run, tickets, "p"))
    phase = bench.phase(f"{kind}: e2e paced at {rate:,.0f} cmd/s", len(paced), PACED_SECONDS * 2 + 5)
    before = (pipeline.intake.stats.batches, pipeline.relay.stats.pages)
    with bench.sampler(f"end to end, paced, on {kind}", ("intake", "relay")):
        results.latency = end_to_end.paced(bench.bootstrap, topic, watch, paced, rate, phase)
    batches, pages = pipeline.intake.stats.batches - before[0], pipeline.relay.stats.pages - before[1]
    latency = results.latency
    bench.screen.say(
        f"{kind}: paced latency p50 {latency.first_tenth_p50 * 1000:,.0f} ms over the first tenth of the commands, "
        f"{latency.last_tenth_p50 * 1000:,.0f} ms over the last tenth"
    )
    bench.screen.say(
        f"{kind}: paced run took {batches:,} intake batches (about {len(paced) / max(batches, 1):,.0f} "
        f"commands each) and {pages:,} relay pages (about {len(paced) / max(pages, 1):,.0f} events each)"
    )


def header(console: Console, args: argparse.Namespace, bootstrap: str, origin: str) -> None:
    s = Settings()
    console.print(
        f"[bold]bench.pipeline[/]: {args.commands:,} commands, {args.partitions} partitions, store(s) {args.store}; "
        f"{os.cpu_count()} CPU(s), Python {platform.python_version()}, eventsourcing {version('eventsourcing')}, "
        f"kafka-python {version('kafka-python')}\nbroker {bootstrap} ({origin}); engine settings as configured: "
        f"intake_batch={s.intake_batch}, relay_page={s.relay_page}, idle_wait_ms={s.idle_wait_ms}; "
        f"load average {_load()} (other work on this machine lowers every figure)",
        highlight=False,
    )


def _load() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = quiet_console()
    bench = _run(args, console)
    console.print(report.table(bench.results))
    report.print_summary(console, bench.results)
    console.print(f"load average at the end: {_load()}", highlight=False)
    for title, profile in bench.profiles.items():
        report.print_profile(console, title, profile)
    for title, sampler in bench.samplers.items():
        report.print_samples(console, title, sampler)
    return 0


def _run(args: argparse.Namespace, console: Console) -> Bench:
    stores = ("sqlite", "postgres") if args.store == "both" else (args.store,)
    with ExitStack() as stack, Screen(console) as screen:
        resources = Resources(stack, screen.say)
        bootstrap, origin = resources.bootstrap()
        header(console, args, bootstrap, origin)
        bench = Bench(args, resources, screen, bootstrap)
        run_raw_kafka(bench)
        for kind in stores:
            run_store(bench, kind)
        screen.say("cleaning up: topics, schemas, files" + (", bench broker" if "started" in origin else ""))
    return bench


if __name__ == "__main__":
    raise SystemExit(main())
