"""Decide benchmark: the write path's domain in memory, commands/s and µs/command over the golden corpus's mix."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from domain import rules
from domain.commands import Command
from domain.desk import TicketDesk
from domain.errors import DomainError
from domain.events import DomainEvent
from domain.persistence import stored_as_json
from domain.policy import PolicyBook
from infra.policy_files import load_policy
from tests.golden_corpus import Corpus

States = dict[UUID, Any]


def decide_and_evolve(states: States, command: Command, book: PolicyBook) -> list[DomainEvent]:
    """One command decided on the states held in memory, and the states evolved by its events."""
    for stream in rules.streams_read(command):
        states.setdefault(stream, None)
    events = rules.decide(states, command, book)
    for event in events:
        states[event.originator_id] = rules.evolve(states[event.originator_id], event)
    return events


# What becomes of each command's events after deciding: (a) nothing, (b) their stored form, (c) saved.
Keep = Callable[[list[DomainEvent]], object]
KeepIn = Callable[[PolicyBook], Keep]


def kept_nowhere(book: PolicyBook) -> Keep:
    return lambda events: None


def stored_form(book: PolicyBook) -> Keep:
    mapper = stored_as_json()
    return lambda events: [mapper.to_stored_event(event) for event in events]


def saved_in_memory(book: PolicyBook) -> Keep:
    """One `TicketDesk.save` a command into the library's in-memory store: the save path's Python, no database."""
    desk = TicketDesk(book, env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    return lambda events: events and desk.save(*events)


def one_round(
    commands: Sequence[Command], book: PolicyBook, keep_in: Callable[[PolicyBook], Keep]
) -> tuple[float, int]:
    """Every command decided from empty states; returns the CPU seconds it took and the events decided.

    CPU time of this process, not wall time: on a machine shared with other work, wall time counts the waits for
    a core too, and varies 2-3x from run to run where CPU time varies by tens of percent."""
    keep = keep_in(book)
    states: States = {}
    decided = 0
    started = time.process_time()
    for command in commands:
        try:
            events = decide_and_evolve(states, command, book)
        except DomainError:
            continue
        decided += len(events)
        keep(events)
    return time.process_time() - started, decided


def measure(label: str, commands: Sequence[Command], book: PolicyBook, rounds: int, keep_in: KeepIn) -> None:
    one_round(commands, book, keep_in)  # untimed: calendars and holiday tables are built on first use
    timings = [one_round(commands, book, keep_in) for _ in range(rounds)]
    seconds = [t for t, _ in timings]
    best, median = min(seconds), statistics.median(seconds)
    per_command = 1e6 * median / len(commands)
    print(
        f"{label:<40} {len(commands) / median:>10,.0f} commands/s  {per_command:>7.1f} µs/command (median)  "
        f"best {1e6 * best / len(commands):.1f} µs  {timings[0][1]:,} events per round"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds over the whole corpus, per figure")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one round of (b) instead")
    args = parser.parse_args()
    book = load_policy(None)
    commands = list(Corpus().commands())
    print(f"{len(commands):,} commands of the golden corpus, {args.rounds} rounds each; load {os.getloadavg()[0]:.2f}")
    if args.profile:
        profile(commands, book)
        return
    measure("(a) decide + evolve", commands, book, args.rounds, kept_nowhere)
    measure("(b) decide + evolve + stored form", commands, book, args.rounds, stored_form)
    measure("(c) decide + evolve + save (in memory)", commands, book, args.rounds, saved_in_memory)


def profile(commands: Sequence[Command], book: PolicyBook) -> None:
    import cProfile
    import pstats

    one_round(commands, book, stored_form)
    profiler = cProfile.Profile()
    profiler.runcall(one_round, commands, book, stored_form)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
