"""The billing projection fed by the real pipeline, on SQLite and PostgreSQL: its tables equal the pure fold."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from domain.commands import parse_command
from infra.cli import app
from infra.compose.components import build_intake, build_projector, build_relay
from infra.compose.desk import build_desk
from infra.compose.projections import build_projection_database
from infra.settings import Settings
from projections.billing import BillingFold, all_statements
from projections.billing.reads import projected_until
from projections.database import ProjectionDatabase
from tests.integration.helpers import (
    RawMessage,
    component_env,
    delete_pipeline_topics,
    drain,
    handled,
    pipeline_settings,
    publish,
    publish_raw,
    read_all,
    relay_everything,
    topic_size,
)
from tests.unit.test_billing_projection import CLOSE_MARCH, ESCALATE_LATE, stored_statements

pytestmark = pytest.mark.kafka
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "march-2026.jsonl"
RUN = {"max_seconds": 90.0, "idle_timeout": 15.0}
MARCH = "SELECT statement FROM billing_statements WHERE customer_id = 'acme' AND month = '2026-03'"
runner = CliRunner()
# acme's March statement as the projection held it right after the closing, per test (by projector group).
MARCH_AS_CLOSED: dict[str, list[tuple]] = {}


def example_commands() -> list:
    commands = []
    for line in EXAMPLE.read_text().splitlines():
        try:
            commands.append(parse_command(line))
        except ValueError:  # the example's one invalid line
            continue
    return commands


@pytest.fixture
def pipeline(store_settings: Settings, kafka_bootstrap: str) -> Iterator[Settings]:
    settings = pipeline_settings(store_settings, kafka_bootstrap).model_copy(update={"projector_batch": 9})
    yield settings
    delete_pipeline_topics(kafka_bootstrap, settings)


def through_the_pipeline(settings: Settings, bootstrap: str, commands: list) -> None:
    """Commands published, stored by the intake, relayed, and projected: each step finished before the next."""
    intake = build_intake(settings, bootstrap)
    try:
        before = handled(intake)
        publish(bootstrap, settings.topics.commands, commands)
        drain(intake, until=lambda: handled(intake) >= before + len(commands))
    finally:
        intake.close()
    relay = build_relay(settings, bootstrap)
    try:
        relay_everything(relay)
    finally:
        relay.close()
    project(settings, bootstrap)


def project(settings: Settings, bootstrap: str) -> None:
    """Run the projector until it has read the whole events topic (its offsets are in the database)."""
    size = topic_size(bootstrap, settings.topics.events)
    with build_projector(settings, bootstrap) as projector:
        projector.run(stop=lambda: projected_offsets(settings) >= size, **RUN)
    assert projected_offsets(settings) == size


def projected_offsets(settings: Settings) -> int:
    db = build_projection_database(settings)
    try:
        return sum(row[0] for row in db.query(f"SELECT next_offset FROM {db.table('projection_offsets')}"))
    finally:
        db.close()


def pure_fold(settings: Settings) -> BillingFold:
    desk = build_desk(settings)
    try:
        return BillingFold(desk.policies).apply_all(desk.recorded_events())
    finally:
        desk.close()


def query(settings: Settings, statement: str) -> list[tuple]:
    """Rows of plain SQL with bare table names, as an analyst writes it (on PostgreSQL, in the test's schema)."""
    db: ProjectionDatabase = build_projection_database(settings)
    try:
        with db.transaction() as cursor:
            if db.postgres:
                cursor.execute(f'SET LOCAL search_path TO "{db.schema}"')
            cursor.execute(statement)
            return cursor.fetchall()
    finally:
        db.close()


@pytest.fixture
def billed(pipeline: Settings, kafka_bootstrap: str, monkeypatch) -> Settings:
    """March through the pipeline, then its closing, then a late escalation; the CLI pointed at the same places."""
    for name, value in component_env(pipeline, kafka_bootstrap, pipeline.var_dir).items():
        monkeypatch.setenv(name, value)
    commands = example_commands()
    through_the_pipeline(pipeline, kafka_bootstrap, commands[:2])  # the plans first
    through_the_pipeline(pipeline, kafka_bootstrap, commands[2:])
    through_the_pipeline(pipeline, kafka_bootstrap, [parse_command(CLOSE_MARCH)])
    MARCH_AS_CLOSED[pipeline.projector_group] = query(pipeline, MARCH)
    through_the_pipeline(pipeline, kafka_bootstrap, [parse_command(ESCALATE_LATE)])
    return pipeline


def test_the_billing_tables_equal_the_pure_fold_of_the_store(billed):
    fold = pure_fold(billed)
    db = build_projection_database(billed)
    try:
        assert stored_statements(db) == all_statements(fold, fold.clock)
        assert projected_until(db) == fold.clock
    finally:
        db.close()


def test_closed_march_is_unchanged_and_the_late_escalation_is_one_adjustment_on_april(billed):
    assert query(billed, MARCH) == MARCH_AS_CLOSED[billed.projector_group]
    assert '"closed":true' in query(billed, MARCH)[0][0]
    adjustments = query(
        billed,
        "SELECT customer_id, month, reference, amount, adjusted_month FROM billing_statement_lines "
        "WHERE kind = 'adjustment'",
    )
    assert [(c, m, r, str(a), am) for c, m, r, a, am in adjustments] == [
        ("acme", "2026-04", "crm:A-6", "74.00", "2026-03")
    ]


@pytest.mark.parametrize("arguments", [["statement", "--customer", "acme", "--month", "2026-03"],
                                       ["statement", "--customer", "acme", "--month", "2026-04"],
                                       ["statements", "--month", "2026-04"]])  # fmt: skip
def test_the_commands_read_the_projection_and_agree_with_the_store(billed, arguments):
    clock = pure_fold(billed).clock.isoformat()
    projected = runner.invoke(app, [*arguments, "--format", "json"])
    recomputed = runner.invoke(app, [*arguments, "--format", "json", "--from-store", "--as-of", clock])
    assert projected.exit_code == 0, projected.output
    assert recomputed.exit_code == 0, recomputed.output
    assert json.loads(projected.stdout) == json.loads(recomputed.stdout)
    assert "74.00" in projected.stdout or arguments[-1] == "2026-03"


def test_events_published_twice_are_not_counted_twice(billed, kafka_bootstrap):
    before = query(billed, "SELECT customer_id, month, statement FROM billing_statements ORDER BY 1, 2")
    size = topic_size(kafka_bootstrap, billed.topics.events)
    again = [RawMessage(r.key, r.value, list(r.headers)) for r in read_all(kafka_bootstrap, billed.topics.events, size)]
    publish_raw(kafka_bootstrap, billed.topics.events, again)
    project(billed, kafka_bootstrap)
    assert query(billed, "SELECT customer_id, month, statement FROM billing_statements ORDER BY 1, 2") == before


DOCS = Path(__file__).resolve().parents[2] / "docs" / "projections.md"
# Views of "now": the example's metrics fell due in March 2026, so none of them is at risk today.
MAY_BE_EMPTY = ("sla_at_risk",)


def documented_sql() -> list[str]:
    """Every statement of the ```sql blocks of docs/projections.md."""
    blocks = re.findall(r"```sql\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    statements = [s.strip() for block in blocks for s in block.split(";")]
    return [s for s in statements if s and not all(line.startswith("--") for line in s.splitlines())]


def test_every_documented_sql_example_runs_and_returns_rows(billed):
    examples = documented_sql()
    assert len(examples) >= 9
    for example in examples:
        rows = query(billed, example)
        assert rows or any(view in example for view in MAY_BE_EMPTY), example
