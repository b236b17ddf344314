"""Step 1 of a rebuild by several processes, each filling the fresh tables with its share of the tickets' events."""

from __future__ import annotations

import multiprocessing
import os
import queue
import sqlite3
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.compose.desk import build_desk
from infra.compose.projections import build_projection_database, build_scratch_database
from infra.compose.rebuild import PER_TICKET, store_log, views
from infra.policy_files import load_policy
from infra.settings import Settings
from infra.store_log import Share
from projections.rebuild import REBUILD_SUFFIX, Filled, Progress, RebuildableView, RebuildFailed, RenamedTables, Replay
from projections.state_cache import MAX_STATES, StateCache

# Spawned workers start from a fresh interpreter: a forked one would share the parent's open connections.
WORKER_START = "spawn"
# How long the main process waits for news before it looks whether a worker died without a word (killed).
NEWS_WAIT_S = 0.5
# How long a worker that is no longer needed gets to end before it is killed.
STOP_WAIT_S = 5.0
# Lines of a worker's error kept in its one-line message: a validation error's title and first problem.
REASON_LINES = 2


@dataclass(frozen=True)
class ShareTask:
    """One worker's part of step 1: its share of the tickets, the notification to fill up to, where to write."""

    settings: Settings
    view: str
    share: Share
    target: int
    # SQLite takes one writer at a time per file: each worker folds into a scratch file of its own, copied into
    # the fresh tables at the end. None on PostgreSQL: the workers write the fresh tables side by side.
    part: Path | None


@dataclass(frozen=True)
class Advanced:
    share: int
    position: int


@dataclass(frozen=True)
class Finished:
    share: int
    filled: Filled
    peak_rss_mb: float


@dataclass(frozen=True)
class Failed:
    share: int
    reason: str


def worker_count(settings: Settings, view: str, asked: int | None = None) -> int:
    """Processes for step 1: one for a view whose rows span tickets (billing), else as asked, set, or per CPU."""
    if view not in PER_TICKET:
        return 1
    return asked or settings.rebuild_workers or os.cpu_count() or 1


def parallel_fill(settings: Settings, view: RebuildableView, workers: int) -> ParallelFill | None:
    """Step 1 by `workers` processes; None when one is asked for (the rebuild fills the tables itself)."""
    return ParallelFill(settings, view, workers) if workers > 1 and view.name in PER_TICKET else None


class ParallelFill:
    """Fills a view's fresh tables with one spawned process per share of the tickets: a `FillTables`."""

    def __init__(self, settings: Settings, view: RebuildableView, workers: int):
        self.settings, self.view, self.workers = settings, view, workers
        self.peak_rss_mb: list[float] = []  # each worker's, for the benchmark

    def __call__(self, target: int, progress: Progress) -> Filled:
        """1. Start one worker per share. 2. Gather their progress until each has finished; a failed or dead
        worker stops the others and fails the rebuild. 3. SQLite: copy each worker's part into the fresh tables."""
        tasks = [self._task(index, target) for index in range(self.workers)]
        context = multiprocessing.get_context(WORKER_START)
        news = context.Queue()
        processes = [context.Process(target=fill_share, args=(task, news), daemon=True) for task in tasks]
        try:
            for process in processes:
                process.start()
            finished = _Gathering(processes, target, progress).run(news)
            _merge(self.settings, self.view, [task.part for task in tasks if task.part])
        finally:
            _stop(processes)
            for task in tasks:
                if task.part:
                    task.part.unlink(missing_ok=True)
        self.peak_rss_mb = [each.peak_rss_mb for each in finished]
        return Filled(sum(f.filled.events for f in finished), sum(f.filled.failures for f in finished))

    def _task(self, index: int, target: int) -> ShareTask:
        part = None
        if self.settings.projections_backend() == "sqlite":
            projections = self.settings.projections_sqlite_file()
            part = projections.with_name(f"{projections.name}.{self.view.name}{REBUILD_SUFFIX}-{index}")
        return ShareTask(self.settings, self.view.name, Share(index, self.workers), target, part)


class _Gathering:
    """The main process's side of step 1: workers' news turned into progress, a finish, or the rebuild's failure."""

    def __init__(self, processes: list[Any], target: int, progress: Progress):
        self.processes, self.target, self.progress = processes, target, progress
        self.positions = [0] * len(processes)
        self.finished: dict[int, Finished] = {}

    def run(self, news: Any) -> list[Finished]:
        while len(self.finished) < len(self.processes):
            try:
                self._take(news.get(timeout=NEWS_WAIT_S))
            except queue.Empty:
                self._check_alive(news)
        return [self.finished[index] for index in sorted(self.finished)]

    def _take(self, message: Advanced | Finished | Failed) -> None:
        if isinstance(message, Failed):
            raise RebuildFailed(f"rebuild worker {self._name(message.share)} failed: {message.reason}")
        if isinstance(message, Finished):
            self.finished[message.share] = message
            return
        self.positions[message.share] = message.position
        self.progress(sum(self.positions) // len(self.positions), self.target)

    def _check_alive(self, news: Any) -> None:
        """A worker gone without finishing may have sent its last news just now: read it, then judge."""
        if not self._silent_dead():
            return
        with suppress(queue.Empty):
            while True:
                self._take(news.get(timeout=NEWS_WAIT_S))
        for index in self._silent_dead():
            code = self.processes[index].exitcode
            raise RebuildFailed(f"rebuild worker {self._name(index)} ended with exit code {code} before it finished")

    def _silent_dead(self) -> list[int]:
        return [i for i, p in enumerate(self.processes) if p.exitcode is not None and i not in self.finished]

    def _name(self, index: int) -> str:
        return f"{index + 1} of {len(self.processes)}"


def fill_share(task: ShareTask, news: Any) -> None:
    """A worker's life: fill its share, then say so; its error is reported in a few lines, never raised."""
    try:
        filled = _fill_share(task, lambda done, _total: news.put(Advanced(task.share.index, done)))
    except BaseException as error:  # noqa: BLE001 - the main process fails the rebuild with the reason
        lines = [line.strip() for line in str(error).splitlines() if line.strip()][:REASON_LINES]
        news.put(Failed(task.share.index, "; ".join([type(error).__name__, *lines])))
        return
    news.put(Finished(task.share.index, filled, peak_rss_mb()))


def _fill_share(task: ShareTask, progress: Callable[[int, int], None]) -> Filled:
    """The share's events folded into the fresh tables (PostgreSQL) or into the worker's part (SQLite)."""
    book = load_policy(task.settings.policy_file)
    desk = build_desk(task.settings, book)
    db = build_scratch_database(task.part) if task.part else build_projection_database(task.settings)
    log = store_log(desk, task.view, task.share)
    replay = Replay(db, views(book)[task.view], log, REBUILD_SUFFIX, progress)
    _share_memory(replay.projection, task.share.count)
    try:
        if task.part:
            replay.fresh_tables()
        replay.copy(task.target)
    finally:
        replay.close()
        db.close()
        desk.close()
    return Filled(replay.events, replay.failures)


def _share_memory(projection: Any, workers: int) -> None:
    """A projection that keeps parsed states keeps its share of what one process would: the workers together
    take the memory of one rebuild, not one each."""
    states = getattr(projection, "states", None)
    if isinstance(states, StateCache):
        states.hold_at_most(max(1, MAX_STATES // workers))


def _merge(settings: Settings, view: RebuildableView, parts: list[Path]) -> None:
    """Each SQLite part's tables into the fresh tables, one transaction each (ATTACH is refused inside one)."""
    scratch = RenamedTables(build_projection_database(settings), REBUILD_SUFFIX)
    try:
        for part in parts:
            connection = scratch.connection
            connection.execute("ATTACH DATABASE ? AS part", (str(part),))
            try:
                with scratch.transaction() as cursor:
                    for name in view.tables:
                        table = scratch.table(name)
                        cursor.execute(f"INSERT INTO main.{table} SELECT * FROM part.{table}")
            finally:
                with suppress(sqlite3.Error):  # a failed transaction closed the connection, and the part with it
                    connection.execute("DETACH DATABASE part")
    finally:
        scratch.close()


def _stop(processes: list[Any]) -> None:
    """Workers still running (another one failed) are ended; every one is waited for."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        if process.pid is not None:
            process.join(STOP_WAIT_S)
            if process.is_alive():
                process.kill()
                process.join()


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
