"""A wall-clock stack sampler for named threads of this process: where each one spends its time, waits included.

cProfile sees one thread and only CPU-visible calls; the end-to-end run has intake and relay in threads that
mostly wait (on the broker, the database, a sleep or the GIL), so sampling their stacks says more.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType

# Frames from these folders say which step of the engine a thread is in.
PROJECT_PARTS = ("consumers", "producers", "domain", "infra")


class StackSampler:
    """Samples the named threads every `interval` seconds until stopped."""

    def __init__(self, thread_names: tuple[str, ...], interval: float = 0.005):
        self.thread_names = thread_names
        self.interval = interval
        self.samples: dict[str, Counter[tuple[str, str]]] = {name: Counter() for name in thread_names}
        self.cpu: dict[str, float] = {}  # CPU seconds per thread of the process while sampling
        self.wall = 0.0
        self._cpu_at_start: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stack-sampler", daemon=True)

    def __enter__(self) -> StackSampler:
        self._cpu_at_start = thread_cpu_seconds()
        self.wall = -time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.wall += time.monotonic()
        at_end = thread_cpu_seconds()
        self.cpu = {name: seconds - self._cpu_at_start.get(name, 0.0) for name, seconds in at_end.items()}

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            frames = sys._current_frames()
            for thread in threading.enumerate():
                frame = frames.get(thread.ident or -1)
                if thread.name in self.samples and frame is not None:
                    self.samples[thread.name][_where(frame)] += 1

    def top(self, thread_name: str, count: int = 10) -> list[tuple[float, str, str]]:
        """The most sampled places of a thread: share of samples, engine step, innermost Python frame."""
        samples = self.samples[thread_name]
        total = sum(samples.values()) or 1
        return [(n / total, step, leaf) for (step, leaf), n in samples.most_common(count)]


def thread_cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) of each live thread, by name, from /proc; empty where there is no /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the command name: state is field 3 of stat(5), utime 14 and stime 15.
        found[thread.name] = found.get(thread.name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return found


def _where(frame: FrameType) -> tuple[str, str]:
    """(innermost frame in the project's code, innermost frame of all)."""
    leaf = _name(frame)
    step = "-"
    current: FrameType | None = frame
    while current is not None:
        if Path(current.f_code.co_filename).parent.name in PROJECT_PARTS:
            step = _name(current)
            break
        current = current.f_back
    return step, leaf


def _name(frame: FrameType) -> str:
    path = Path(frame.f_code.co_filename)
    return f"{path.parent.name}/{path.name}:{frame.f_lineno} {frame.f_code.co_name}"
