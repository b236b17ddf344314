"""Parsed states kept between batches, each trusted only while the database still holds the text it came from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

State = TypeVar("State")
# States held at most (a ticket's is about 2.5 KB with its text): past this the least recently used is dropped, so
# a projector or a rebuild over millions of tickets stays flat in memory, at some 50 MB.
MAX_STATES = 20_000


class StateCache(Generic[State]):
    """A state column's parsed values by key: a stored text seen before (read or written) is not parsed again.

    The database stays the truth: a hit needs the very text the row holds now. A batch that rolled back, another
    projector's write after a rebalance, or a rebuild all leave other text in the row, so it is parsed afresh.
    """

    def __init__(self, parse: Callable[[str], State], dump: Callable[[State], str], limit: int = MAX_STATES):
        self._parse, self._dump, self._limit = parse, dump, limit
        self._held: dict[str, tuple[str, State]] = {}

    def load(self, key: str, text: str) -> State:
        held = self._held.get(key)
        if held is not None and held[0] == text:
            return held[1]
        state = self._parse(text)
        self._remember(key, text, state)
        return state

    def dump(self, key: str, state: State) -> str:
        text = self._dump(state)
        self._remember(key, text, state)
        return text

    def hold_at_most(self, limit: int) -> None:
        """Keep at most `limit` states from now on (a rebuild's workers share what one process would hold)."""
        self._limit = limit
        while len(self._held) > limit:
            del self._held[next(iter(self._held))]

    def clear(self) -> None:
        self._held.clear()

    def __len__(self) -> int:
        return len(self._held)

    def _remember(self, key: str, text: str, state: State) -> None:
        # Taken out and put back: the dict's order is then the order of last use, oldest first.
        self._held.pop(key, None)
        self._held[key] = (text, state)
        if len(self._held) > self._limit:
            del self._held[next(iter(self._held))]
