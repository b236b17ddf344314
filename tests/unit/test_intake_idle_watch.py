"""The intake says so when it holds no partition for a while, and is quiet while it has some."""

from __future__ import annotations

import logging

from consumers.intake import _IdleWatch


def test_no_partitions_for_too_long_is_reported_and_having_some_resets_it(caplog):
    watch = _IdleWatch(warn_after=0.0)
    with caplog.at_level(logging.ERROR, logger="consumers.intake"):
        watch.check(assigned=False)
        assert not caplog.records
        watch.check(assigned=False)
        assert "held no partition" in caplog.records[-1].getMessage()
        caplog.clear()
        watch.check(assigned=True)
        watch.check(assigned=True)
        assert not caplog.records


def test_a_short_gap_without_partitions_is_not_reported(caplog):
    watch = _IdleWatch(warn_after=3600.0)
    with caplog.at_level(logging.ERROR, logger="consumers.intake"):
        for _ in range(3):
            watch.check(assigned=False)
    assert not caplog.records
