"""The intake notices when it has held no partition for a while, and not while it has some."""

from __future__ import annotations

from consumers.intake import _IdleWatch


def test_no_partitions_for_too_long_is_stuck_once_and_the_watch_starts_over():
    watch = _IdleWatch(after=0.0)

    assert not watch.stuck(assigned=False)
    assert watch.stuck(assigned=False)
    assert not watch.stuck(assigned=False)  # the rejoin gets its own time


def test_having_partitions_resets_the_watch():
    watch = _IdleWatch(after=0.0)
    watch.stuck(assigned=False)

    assert not watch.stuck(assigned=True)
    assert not watch.stuck(assigned=False)


def test_a_short_gap_without_partitions_is_not_stuck():
    watch = _IdleWatch(after=3600.0)

    assert not any(watch.stuck(assigned=False) for _ in range(3))
