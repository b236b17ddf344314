"""Phase bookkeeping: a count against a deadline, the time it took, progress on screen, and the figures kept."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.console import Console
from rich.progress import Progress


@dataclass(frozen=True)
class Measure:
    """How many of the expected items a phase got through, in how many seconds."""

    count: int
    expected: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    @property
    def partial(self) -> bool:
        return self.count < self.expected


@dataclass(frozen=True)
class Latency:
    """Publish-to-readable latencies of a paced run, in seconds, sorted."""

    samples: tuple[float, ...]
    expected: int
    rate: float
    # Medians of the first and the last tenth in publish order: rising means the pipeline falls behind.
    first_tenth_p50: float = float("nan")
    last_tenth_p50: float = float("nan")

    def percentile(self, share: float) -> float:
        if not self.samples:
            return float("nan")
        return self.samples[min(len(self.samples) - 1, int(share * len(self.samples)))]


class Phase:
    """One bounded phase: its clock starts at `start()`, its deadline `timeout` seconds later."""

    def __init__(self, screen: Screen, name: str, expected: int, timeout: float):
        self.screen = screen
        self.name = name
        self.expected = expected
        self.timeout = timeout
        self.count = 0
        self._task = screen.progress.add_task(name, total=expected)
        self._started = time.perf_counter()
        self._deadline = time.monotonic() + timeout

    def start(self) -> None:
        self._started = time.perf_counter()
        self._deadline = time.monotonic() + self.timeout

    def expired(self) -> bool:
        return time.monotonic() >= self._deadline

    def done(self) -> bool:
        return self.count >= self.expected or self.expired()

    def advance(self, n: int) -> None:
        self.count += n
        self.screen.progress.update(self._task, completed=self.count)

    def elapsed(self) -> float:
        return time.perf_counter() - self._started

    def finish(self, count: int | None = None, seconds: float | None = None, unit: str = "/s") -> Measure:
        """The figures of the phase, also printed as one line; the progress bar goes away."""
        measure = Measure(self.count if count is None else count, self.expected, seconds or self.elapsed())
        self.screen.progress.remove_task(self._task)
        flag = f"  [red]PARTIAL: timed out after {self.timeout:.0f} s[/]" if measure.partial else ""
        self.screen.say(f"{self.name}: {measure.count:,} in {measure.seconds:.2f} s = {measure.rate:,.0f}{unit}{flag}")
        return measure


class Screen:
    """The console, the live progress bars, and one timestamped line per finished phase."""

    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(console=console, transient=True, refresh_per_second=4)
        self._t0 = time.monotonic()

    def __enter__(self) -> Screen:
        self.progress.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.progress.stop()

    def phase(self, name: str, expected: int, timeout: float) -> Phase:
        return Phase(self, name, expected, timeout)

    def say(self, text: str) -> None:
        self.progress.console.print(f"[dim]{time.monotonic() - self._t0:6.1f}s[/] {text}", highlight=False)
