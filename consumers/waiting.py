"""Commands that wait for a fact: parked when it is missing, applied when it arrives, refused after too long."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from consumers.parking import ParkedCommand, ParkingLot
from consumers.records import DeadLetter, Record
from domain.commands import Command, parse_command
from domain.desk import Outcome
from domain.errors import MissingFact
from domain.events import Opened, PlanSubscribed

log = logging.getLogger(__name__)
# While commands wait, the lot is looked at this often even if no fact arrived here: the fact may have been
# stored by another intake (plans and tickets travel on different partitions, maybe to different intakes).
SWEEP_EVERY_S = 1.0
# Parked commands decided per sweep; more wait for the next one.
SWEEP_LIMIT = 2000

# The intake's write side: WriteSide.handle_batch (consumers/write_side.py), or a stand-in in tests.
Apply = Callable[[list[Command]], list[Outcome]]
Send = Callable[[Sequence[DeadLetter]], None]


class Waiting:
    """Keeps a ticket's commands in order while some of them wait for a plan or an opening."""

    def __init__(self, lot: ParkingLot, max_seconds: float, sweep_every: float = SWEEP_EVERY_S):
        self.lot = lot
        self.max_seconds = max_seconds
        self.sweep_every = sweep_every
        self.parked_last = 0
        self._next_sweep = 0.0
        self._lot_has_commands = True  # until the first sweep has looked

    def apply(self, valid: Sequence[tuple[Any, Command]], apply: Apply) -> tuple[list[Outcome], list[DeadLetter]]:
        """Apply a batch, in three steps; returns the outcomes of what was decided and the refusals.

        1. Hold back commands of streams that have commands parked already: they queue behind them.
        2. Apply the rest in one transaction.
        3. Park the held-back commands and those refused for a missing fact.
        """
        held, decided = [], list(valid)
        if self._lot_has_commands:
            queued = self.lot.waiting_streams(str(c.stream_id) for _, c in valid)
            held = [(r, c) for r, c in valid if str(c.stream_id) in queued]
            decided = [(r, c) for r, c in valid if str(c.stream_id) not in queued]
        outcomes = apply([c for _, c in decided]) if decided else []
        to_park = [_parked(r, c, "queued behind earlier commands of the same ticket that wait") for r, c in held]
        refused, done = [], []
        for (record, command), outcome in zip(decided, outcomes, strict=True):
            if outcome.kind == MissingFact.kind:
                to_park.append(_parked(record, command, outcome.reason))
            elif outcome.refused:
                refused.append(DeadLetter(record, outcome.kind or "refused", outcome.reason))
            else:
                done.append(outcome)
        self._park(to_park)
        return done, refused

    def facts_arrived(self, outcomes: Sequence[Outcome]) -> None:
        """An opening or a plan was stored: commands waiting for it may go now."""
        if self._lot_has_commands and any(isinstance(e, Opened | PlanSubscribed) for o in outcomes for e in o.events):
            self._next_sweep = 0.0

    def release(self, apply: Apply, send: Send) -> tuple[list[Outcome], list[DeadLetter]] | None:
        """Decide the parked commands again, in publishing order, when a sweep is due; None when none was.

        1. Read the oldest parked commands.
        2. Decide them in one transaction: those whose fact arrived are applied (or refused for another reason).
        3. Refuse, as dead letters, those still missing their fact after `max_seconds`.
        4. Publish the dead letters, then remove what was decided for good. A crash before this decides them
           again: the store recognises the applied ones by command id.
        """
        if time.monotonic() < self._next_sweep:
            return None
        self._next_sweep = time.monotonic() + self.sweep_every
        parked = self.lot.oldest(SWEEP_LIMIT)
        self._lot_has_commands = bool(parked)
        if not parked:
            return None
        outcomes = apply([parse_command(p.value) for p in parked])
        done, letters, gone = [], [], []
        now = time.time()
        for waiting, outcome in zip(parked, outcomes, strict=True):
            if outcome.kind == MissingFact.kind and now - waiting.parked_at < self.max_seconds:
                continue
            gone.append(waiting)
            if outcome.refused:
                letters.append(_refusal(waiting, outcome, now))
            else:
                done.append(outcome)
        send(letters)
        self.lot.remove(gone)
        if gone:
            log.info("released %d parked commands, %d of them refused; %d still wait",
                     len(gone), len(letters), len(parked) - len(gone))  # fmt: skip
        return done, letters

    def _park(self, commands: list[ParkedCommand]) -> None:
        self.parked_last = len(commands)
        if commands:
            self.lot.park(commands)
            self._lot_has_commands = True
            for command in commands:
                log.info("parked %s: %s", command.source, command.reason)

    def close(self) -> None:
        self.lot.close()


def _refusal(waiting: ParkedCommand, outcome: Outcome, now: float) -> DeadLetter:
    record = Record(waiting.topic, waiting.partition, waiting.offset, waiting.key, waiting.value, waiting.headers)
    if outcome.kind == MissingFact.kind:
        return DeadLetter(record, "refused", f"{outcome.reason} (waited {now - waiting.parked_at:.0f} s for it)")
    return DeadLetter(record, outcome.kind or "refused", outcome.reason)


def _parked(record: Any, command: Command, reason: str) -> ParkedCommand:
    return ParkedCommand(
        command_id=str(command.command_id), stream_id=str(command.stream_id), parked_at=time.time(), reason=reason,
        topic=record.topic, partition=record.partition, offset=record.offset, key=record.key, value=record.value,
        headers=list(record.headers or []),
    )  # fmt: skip
