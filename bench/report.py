"""The results table: rates, ratios to the raw rates of the same run, the design's targets, and verdicts."""

from __future__ import annotations

import io
import logging
import pstats
import re
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.measure import Latency, Measure
from bench.sampler import StackSampler

# The design's performance targets.
# The intake against the library's own aggregates saved 100 to a transaction, on the same store.
INTAKE_TARGET = 0.7
RELAY_TARGET = 0.8
P50_TARGET_MS = 20.0
P99_TARGET_MS = 100.0


@dataclass
class StoreResults:
    store: str
    # Measured again just before the relay, so its ratio is not skewed by load that came or went meanwhile.
    produce: Measure | None = None
    save_single: Measure | None = None
    save_batched: Measure | None = None
    intake: Measure | None = None
    intake_events: Measure | None = None
    relay: Measure | None = None
    burst: Measure | None = None
    latency: Latency | None = None
    error: str | None = None


@dataclass
class Results:
    produce: Measure | None = None
    consume: Measure | None = None
    stores: list[StoreResults] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def intake_ratio(results: Results, s: StoreResults) -> float | None:
    """Commands stored per second over raw aggregates saved 100 to a transaction per second, on the same store."""
    return _ratio(s.intake, s.save_batched)


def relay_ratio(results: Results, s: StoreResults) -> float | None:
    """Relay events per second over raw produce per second, the latter measured just before the relay."""
    return _ratio(s.relay, s.produce or results.produce)


def latency_met(latency: Latency, share: float, target_ms: float) -> bool:
    """Met only if every paced command's event arrived and the percentile is within the target."""
    return len(latency.samples) == latency.expected and latency.percentile(share) * 1000 <= target_ms


def misses(results: Results) -> list[str]:
    """Every design target this run missed, in words."""
    found = []
    for s in results.stores:
        if s.error:
            found.append(f"{s.store}: not measured ({s.error})")
            continue
        found += _ratio_miss("intake", s.store, intake_ratio(results, s), INTAKE_TARGET, "raw 100/txn save")
        found += _ratio_miss("relay", s.store, relay_ratio(results, s), RELAY_TARGET, "raw produce")
        found += _latency_misses(s)
    return found


def _ratio_miss(stage: str, store: str, ratio: float | None, target: float, baseline: str) -> list[str]:
    if ratio is not None and ratio >= target:
        return []
    got = "not measured" if ratio is None else f"{ratio:.2f}x"
    return [f"{stage} on {store}: {got} the {baseline} rate, target {target:g}x"]


def _latency_misses(s: StoreResults) -> list[str]:
    latency = s.latency
    if latency is None:
        return [f"end to end on {s.store}: latency not measured"]
    found = []
    for name, share, target in (("p50", 0.50, P50_TARGET_MS), ("p99", 0.99, P99_TARGET_MS)):
        if not latency_met(latency, share, target):
            value = f"{latency.percentile(share) * 1000:,.1f} ms"
            lost = latency.expected - len(latency.samples)
            seen = f", {lost:,} of {latency.expected:,} events never seen" if lost else ""
            found.append(f"end to end {name} on {s.store}: {value}, target {target:g} ms{seen}")
    return found


def table(results: Results) -> Table:
    grid = Table(title="Pipeline bench: one run, one broker, one machine", title_justify="left")
    for name, justify in (
        ("stage", "left"),
        ("store", "left"),
        ("count", "right"),
        ("s", "right"),
        ("rate / value", "right"),
        ("ratio", "right"),
        ("target", "right"),
        ("verdict", "left"),
    ):
        grid.add_column(name, justify=justify)
    _raw_rows(grid, results)
    for store in results.stores:
        grid.add_section()
        _store_rows(grid, results, store)
    return grid


def _raw_rows(grid: Table, results: Results) -> None:
    grid.add_row("raw produce, kafka-python", "-", *_figures(results.produce, "msg/s"), "", "", "reference")
    grid.add_row("raw consume + orjson.loads", "-", *_figures(results.consume, "msg/s"), "", "", "reference")


def _store_rows(grid: Table, results: Results, s: StoreResults) -> None:
    if s.error:
        grid.add_row("[red]not measured[/]", s.store, "", "", "", "", "", f"[red]{s.error}[/]")
        return
    grid.add_row("raw save, es Aggregate, 1 / txn", s.store, *_figures(s.save_single, "saves/s"), "", "", "reference")
    grid.add_row("raw save, es Aggregate, 100 / txn", s.store, *_figures(s.save_batched, "agg/s"), "", "", "baseline")
    _target_row(
        grid,
        "intake (consumed to stored)",
        s.store,
        s.intake,
        "cmd/s",
        intake_ratio(results, s),
        INTAKE_TARGET,
    )
    grid.add_row("  events stored by intake", s.store, *_figures(s.intake_events, "ev/s"), "", "", "")
    grid.add_row("raw produce, just before relay", s.store, *_figures(s.produce, "msg/s"), "", "", "baseline")
    _target_row(grid, "relay (stored to acked)", s.store, s.relay, "ev/s", relay_ratio(results, s), RELAY_TARGET)
    grid.add_row("end to end, burst", s.store, *_figures(s.burst, "cmd/s"), "", "", "capacity")
    _latency_rows(grid, s)


def _target_row(
    grid: Table, stage: str, store: str, measure: Measure | None, unit: str, ratio: float | None, target: float
) -> None:
    met = ratio is not None and ratio >= target
    grid.add_row(stage, store, *_figures(measure, unit), _times(ratio), f">= {target:g}x", _verdict(met, measure))


def _latency_rows(grid: Table, s: StoreResults) -> None:
    latency = s.latency
    if latency is None:
        grid.add_row("end to end p50 / p99", s.store, "", "", "not measured", "", "", _verdict(False, None))
        return
    count = f"{len(latency.samples):,}/{latency.expected:,}"
    for name, share, target in (("p50", 0.50, P50_TARGET_MS), ("p99", 0.99, P99_TARGET_MS)):
        value_ms = latency.percentile(share) * 1000
        met = latency_met(latency, share, target)
        grid.add_row(
            f"end to end {name} @ {latency.rate:,.0f} cmd/s",
            s.store,
            count,
            "",
            f"{value_ms:,.1f} ms",
            "",
            f"<= {target:g} ms",
            _verdict(met, None),
        )
    grid.add_row("  max", s.store, "", "", f"{latency.percentile(1.0) * 1000:,.1f} ms", "", "", "")


def _figures(measure: Measure | None, unit: str) -> tuple[str, str, str]:
    if measure is None:
        return "-", "-", "not measured"
    count = f"{measure.count:,}" + (f"/{measure.expected:,} [red]partial[/]" if measure.partial else "")
    return count, f"{measure.seconds:.2f}", f"{measure.rate:,.0f} {unit}"


def _ratio(measure: Measure | None, baseline: Measure | None) -> float | None:
    if measure is None or baseline is None or baseline.rate == 0:
        return None
    return measure.rate / baseline.rate


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def _verdict(met: bool, measure: Measure | None) -> str:
    partial = " (partial)" if measure is not None and measure.partial else ""
    return f"[green]met[/]{partial}" if met else f"[bold red]MISSED[/]{partial}"


def print_summary(console: Console, results: Results) -> None:
    """Say plainly which targets were missed."""
    for error in results.errors:
        console.print(f"[red]error:[/] {error}", highlight=False)
    missed = misses(results)
    if not missed:
        console.print("[green]Every design target was met in this run.[/]")
        return
    console.print(f"[bold red]{len(missed)} target(s) missed in this run:[/]")
    for miss in missed:
        console.print(f"  - {miss}", highlight=False)


def print_profile(console: Console, title: str, profile, top: int = 18) -> None:
    """The hotspots of a profiled stage: by own time, then by cumulative time."""
    for order in ("tottime", "cumulative"):
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats(order).print_stats(top)
        body = _short_paths(text.getvalue())
        console.print(f"[bold]{title}, top {top} by {order}[/]")
        console.print(body[body.find("   ncalls") :], highlight=False, markup=False, soft_wrap=True)


def print_samples(console: Console, title: str, sampler: StackSampler, top: int = 10) -> None:
    """Where the sampled threads spent their wall-clock time: engine step and innermost Python frame."""
    for thread in sampler.thread_names:
        grid = Table(title=f"{title}: thread {thread}, wall-clock samples", title_justify="left")
        for name in ("share", "engine step", "innermost Python frame"):
            grid.add_column(name)
        for share, step, leaf in sampler.top(thread, top):
            grid.add_row(f"{share:.0%}", step, leaf)
        console.print(grid)
    busy = sorted(sampler.cpu.items(), key=lambda item: -item[1])
    cpu = ", ".join(f"{name} {seconds:.2f}" for name, seconds in busy if seconds >= 0.01)
    console.print(f"{title}: CPU seconds per thread over {sampler.wall:.1f} s of wall time: {cpu}", highlight=False)


def _short_paths(text: str) -> str:
    """`.../site-packages/kafka/producer/kafka.py` as `kafka/producer/kafka.py`, the project's files as in the repo."""
    text = re.sub(r"\S*/site-packages/", "", text)
    text = re.sub(r"\S*/lib/python3\.\d+/", "", text)
    return text.replace(f"{Path(__file__).resolve().parents[1]}/", "")


def quiet_console() -> Console:
    """The console a benchmark prints to, with kafka-python's log lines kept out of its tables."""
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.ERROR)
    console = Console()
    if not console.is_terminal:
        console.width = 150  # a file or a pipe: wide enough for the table on one line per row
    return console
