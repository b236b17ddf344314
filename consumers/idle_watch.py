"""The guard every consumer in a group keeps: no partition for a minute means a fresh consumer must join."""

from __future__ import annotations

import time

# A group member without partitions for this long is stuck in kafka-python 3.0.12's rejoin race (see IdleWatch)
# or over-provisioned; either way a new consumer joins the group afresh.
NO_PARTITIONS_REJOIN_S = 60.0


class IdleWatch:
    """Says when a consumer has held no partition for a while.

    That is normal for a moment during a rebalance, and for good while a group has more members than partitions;
    it is also how a kafka-python 3.0.12 rejoin race shows itself: the member stops heartbeating and never
    rejoins, with no error anywhere. A fresh consumer ends the race; an over-provisioned group pays one
    rebalance a minute for it.
    """

    def __init__(self, after: float = NO_PARTITIONS_REJOIN_S):
        self.after = after
        self.since: float | None = None

    def stuck(self, assigned: bool) -> bool:
        now = time.monotonic()
        if assigned:
            self.since = None
        elif self.since is None:
            self.since = now
        elif now - self.since >= self.after:
            self.since = None
            return True
        return False
