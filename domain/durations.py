"""Durations as the contract writes them: whole minutes."""

from __future__ import annotations

from datetime import timedelta


def minutes(duration: timedelta) -> int:
    """The whole minutes in a duration, rounded down (a target of 90 min 30 s counts as 90)."""
    return int(duration.total_seconds() // 60)
