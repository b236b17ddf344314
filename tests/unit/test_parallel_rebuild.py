"""Shares of the store's log, and how a rebuild's main process reads its workers' news: no processes, no files."""

from __future__ import annotations

import queue
import uuid
from dataclasses import dataclass

import pytest

from infra.compose.parallel_rebuild import Advanced, Failed, Finished, _Gathering, parallel_fill, worker_count
from infra.compose.rebuild import VIEWS, store_log
from infra.settings import Settings
from infra.store_log import SHARE_HEX_DIGITS, Share
from projections.rebuild import Filled, RebuildFailed
from tests.unit.builders import new_desk, open_ticket, respond, subscribe, unique

OPENED = "2026-03-02T10:00+01:00"
ANSWERED = "2026-03-02T10:30+01:00"


def test_every_ticket_falls_in_exactly_one_share():
    tickets = [uuid.uuid4().hex for _ in range(500)]
    for count in (1, 2, 3, 7):
        holders = [[i for i in range(count) if Share(i, count).holds(t)] for t in tickets]
        assert all(len(found) == 1 for found in holders)
        assert {found[0] for found in holders} == set(range(count))  # 500 random ids reach every share
    assert SHARE_HEX_DIGITS < 8, "the digits stay before the first dash of a PostgreSQL uuid's text"


def test_the_shares_of_a_log_are_the_whole_log_once():
    desk = new_desk()
    customer = unique("cust")
    desk.handle(subscribe(customer, "standard"))
    for _ in range(12):
        opening = open_ticket(customer, OPENED)
        desk.handle(opening)
        desk.handle(respond(opening.ticket_id, ANSWERED))
    end = store_log(desk, "sla").last_id()
    whole = store_log(desk, "sla").read(0, end, end)[0]
    shares = [store_log(desk, "sla", Share(i, 3)).read(0, end, end)[0] for i in range(3)]
    assert len(whole) == 24 and sorted(e.event_id for s in shares for e in s) == sorted(e.event_id for e in whole)
    for index, share in enumerate(shares):
        assert all(Share(index, 3).holds(e.ticket_id.hex) for e in share)


def test_a_read_covers_at_most_limit_notification_ids():
    desk = new_desk()
    customer = unique("cust")
    desk.handle(subscribe(customer, "standard"))
    desk.handle(open_ticket(customer, OPENED))
    log = store_log(desk, "sla")
    assert log.read(0, 1, 2) == ([], 1)  # the plan: read, not folded by the SLA view
    events, last = log.read(1, 1_000, 2)
    assert [e.type for e in events] == ["Opened"] and last == 2
    assert log.read(2, 1_000, 2) == ([], 2)


def test_billing_is_filled_by_one_process_and_the_sla_view_by_as_many_as_asked():
    settings = Settings(rebuild_workers=3)
    assert worker_count(settings, "billing", asked=4) == 1
    assert worker_count(settings, "sla") == 3 and worker_count(settings, "sla", asked=2) == 2
    assert parallel_fill(settings, VIEWS["sla"], 1) is None
    assert parallel_fill(settings, VIEWS["sla"], 2) is not None


@dataclass
class FakeProcess:
    exitcode: int | None = None


class FakeNews:
    """A queue of the workers' news; empty, it answers as a real one does after its wait."""

    def __init__(self, *messages):
        self.messages = list(messages)

    def get(self, timeout: float):
        if not self.messages:
            raise queue.Empty
        return self.messages.pop(0)


def test_progress_is_the_workers_mean_position_and_the_finishes_are_gathered():
    seen = []
    done = [Finished(1, Filled(5, 0), 80.0), Finished(0, Filled(7, 1), 90.0)]
    news = FakeNews(Advanced(0, 40), Advanced(1, 100), *done)
    finished = _Gathering([FakeProcess(), FakeProcess()], 100, lambda d, t: seen.append((d, t))).run(news)
    assert seen == [(20, 100), (70, 100)]
    assert [f.share for f in finished] == [0, 1] and sum(f.filled.events for f in finished) == 12


def test_a_failed_worker_fails_the_rebuild_with_its_reason():
    news = FakeNews(Advanced(0, 10), Failed(1, "ValidationError; 1 validation error for Opened"))
    with pytest.raises(RebuildFailed, match=r"^rebuild worker 2 of 2 failed: ValidationError; 1 validation"):
        _Gathering([FakeProcess(), FakeProcess()], 100, lambda d, t: None).run(news)


def test_a_worker_gone_without_a_word_fails_the_rebuild_once_its_last_news_is_read():
    processes = [FakeProcess(exitcode=0), FakeProcess(exitcode=-9)]
    gathering = _Gathering(processes, 100, lambda d, t: None)
    # The first worker's finish arrives only after it is seen gone: it is read before anyone is judged dead.
    news = FakeNews()
    news.get = _after_one_empty(Finished(0, Filled(1, 0), 1.0))
    with pytest.raises(RebuildFailed, match=r"^rebuild worker 2 of 2 ended with exit code -9 before it finished"):
        gathering.run(news)
    assert list(gathering.finished) == [0]


def _after_one_empty(message):
    answers = [queue.Empty, message]

    def get(timeout: float):
        answer = answers.pop(0) if answers else queue.Empty
        if answer is queue.Empty:
            raise queue.Empty
        return answer

    return get
