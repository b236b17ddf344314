"""`nettask run` and `nettask publish` as an operator uses them: the store ends up as a cold replay says."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from consumers.write_side import WriteSide
from domain.commands import SubscribePlan, parse_command
from domain.desk import TicketDesk
from infra.compose.desk import build_desk
from infra.compose.projections import build_projection_database
from infra.messages import DLQ_KIND, header
from infra.policy_files import load_policy
from projections.sla import queries
from projections.sla.view import fold, metric_rows
from tests.integration.helpers import (
    component_env,
    delete_pipeline_topics,
    pipeline_settings,
    read_all,
    topic_size,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "march-2026.jsonl"
NETTASK = str(Path(sys.executable).with_name("nettask"))


def nettask(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([NETTASK, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_published_commands_are_stored_as_a_cold_replay_stores_them(sqlite_settings, kafka_bootstrap, tmp_path):
    settings = pipeline_settings(sqlite_settings, kafka_bootstrap)
    # The watchdog looks once, at the start, before any ticket is in the view, and not again within the test: on
    # the wall clock every example ticket is long overdue, and the store must stay a cold replay of what was
    # published. What the watchdog adds is tested in tests/integration/test_watchdog.py.
    env = component_env(settings, kafka_bootstrap, tmp_path) | {"NETTASK_WATCHDOG_INTERVAL_S": "3600"}
    lines = EXAMPLE.read_text().splitlines()
    engine = subprocess.Popen(
        [NETTASK, "run", "--max-seconds", "120"], env=env, stderr=subprocess.PIPE, text=True
    )  # fmt: skip
    store = build_desk(settings)
    try:
        published = nettask(env, "publish", str(EXAMPLE))
        assert published.returncode == 0, published.stderr
        assert "published 19 command(s)" in published.stdout
        assert "march-2026.jsonl:20: not published" in published.stderr

        valid = [parse_command(line) for line in lines[:-1]]
        expected = TicketDesk(load_policy(), env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        WriteSide(expected).handle_batch(valid)
        stored_count = len(expected.recorder.select_notifications(start=1, limit=1000))
        assert wait_until(lambda: topic_size(kafka_bootstrap, settings.topics.events) >= stored_count, 60)

        for ticket_id in {c.ticket_id for c in valid if not isinstance(c, SubscribePlan)}:
            assert store.ticket(ticket_id) == expected.ticket(ticket_id)
        [refused] = read_all(kafka_bootstrap, settings.topics.commands_dlq, expected_count=1)
        assert header(refused.headers, DLQ_KIND) == "refused"
        tickets = {c.ticket_id for c in valid if not isinstance(c, SubscribePlan) and expected.ticket(c.ticket_id)}
        assert wait_until(lambda: all(_viewed(settings, t) == _folded(expected, t) for t in tickets), 60)
    finally:
        engine.send_signal(signal.SIGINT)
        _, stderr = engine.communicate(timeout=60)
        store.close()
        delete_pipeline_topics(kafka_bootstrap, settings)
    assert engine.returncode == 0, stderr
    assert "stopped; intake: 18 applied, 0 repeats, 1 refused" in stderr
    assert "projector: " in stderr and "0 dead letters" in stderr


def _folded(desk: TicketDesk, ticket_id) -> list[dict]:
    """A ticket's SLA metric rows as a fold of its events gives them, in the columns the view's query returns."""
    view = None
    for event in desk.events_of(ticket_id):
        view = fold(view, event)
    rows = [{name: getattr(row, name) for name in queries.METRIC_FIELDS} for row in metric_rows(view)]
    return sorted(rows, key=lambda row: row["metric"])


def _viewed(settings, ticket_id) -> list[dict]:
    db = build_projection_database(settings)
    try:
        return sorted(queries.metrics_of(db, str(ticket_id)), key=lambda row: row["metric"])
    except db.errors:  # the projector has not made its tables yet
        return []
    finally:
        db.close()
