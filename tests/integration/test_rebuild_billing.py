"""`nettask projections rebuild billing` and verify on SQLite and PostgreSQL: the statements come back the same."""

from __future__ import annotations

import json
import threading

import pytest
from typer.testing import CliRunner

from domain.statement import Statement
from infra.cli import app
from infra.compose.desk import build_desk
from infra.compose.projections import build_projection_database
from infra.compose.rebuild import store_log, views
from infra.settings import Settings
from projections.billing import customers, tables
from projections.billing.projection import BillingProjection, LegacyBillingState, has_table, statements_of
from projections.rebuild import rebuild
from projections.views import drop_views
from tests.integration import test_rebuild as sla_rebuild
from tests.integration.helpers import wait_until
from tests.integration.test_api import store_example, store_fold

runner = CliRunner()
# The SLA rebuild's fixtures, shared: the same store, projections and pipeline settings.
cli_env, pipeline = sla_rebuild.cli_env, sla_rebuild.pipeline


def billing_rows(settings: Settings) -> tuple[list, list]:
    """Every statement (as its JSON) and every line, in key order."""
    db = build_projection_database(settings)
    try:
        statements = db.query(f"SELECT customer_id, month, statement FROM {db.table(tables.STATEMENTS)} ORDER BY 1, 2")
        lines = db.query(f"SELECT * FROM {db.table(tables.LINES)} ORDER BY customer_id, month, line")
        return [tuple(row) for row in statements], [tuple(row) for row in lines]
    finally:
        db.close()


def execute(settings: Settings, statement: str) -> None:
    sla_rebuild.execute(settings, statement, statements=tables.STATEMENTS, lines=tables.LINES)


def test_a_billing_rebuild_equals_the_live_tables_and_can_be_done_again(cli_env, policy_book):
    store_example(cli_env, policy_book)
    before = billing_rows(cli_env)
    assert before[0] and before[1], "the example month has statements with lines"
    for _ in range(2):  # the second finds the names of keys and indexes free again
        result = runner.invoke(app, ["projections", "rebuild", "billing"])
        assert result.exit_code == 0, result.output
        assert "rebuilt billing" in result.stderr and "0 the view refused" in result.stderr
        assert billing_rows(cli_env) == before
    verified = runner.invoke(app, ["projections", "verify", "--format", "json"])
    assert verified.exit_code == 0, verified.output
    assert {v["view"] for v in json.loads(verified.stdout)["views"]} == {"sla", "billing"}


def test_a_rebuild_before_the_projector_ever_ran_gives_the_store_folds_statements(cli_env, policy_book):
    store_example(cli_env, policy_book)
    _drop_billing_tables(cli_env)
    result = runner.invoke(app, ["projections", "rebuild", "billing"])
    assert result.exit_code == 0, result.output
    fold = store_fold(cli_env, policy_book)
    expected = [s for customer in customers(fold) for s in statements_of(fold, customer)]
    held = [(c, m, Statement.model_validate_json(s)) for c, m, s in billing_rows(cli_env)[0]]
    assert held == [(s.customer_id, str(s.month), s) for s in expected] and expected
    assert runner.invoke(app, ["projections", "verify", "--view", "billing"]).exit_code == 0


def test_a_database_of_the_old_state_table_is_refused_and_a_rebuild_migrates_it(cli_env, policy_book):
    store_example(cli_env, policy_book)
    before = billing_rows(cli_env)
    legacy = "CREATE TABLE {legacy} (customer_id TEXT PRIMARY KEY, state TEXT NOT NULL)"
    sla_rebuild.execute(cli_env, legacy, legacy=tables.LEGACY_CUSTOMERS)
    db = build_projection_database(cli_env)
    try:
        with pytest.raises(LegacyBillingState, match="projections rebuild billing"), db.transaction() as cursor:
            BillingProjection(db, policy_book).create_tables(cursor)
        result = runner.invoke(app, ["projections", "rebuild", "billing"])
        assert result.exit_code == 0, result.output
        with db.transaction() as cursor:
            assert not has_table(db, cursor, tables.LEGACY_CUSTOMERS)
            BillingProjection(db, policy_book).create_tables(cursor)  # the projector starts again
    finally:
        db.close()
    assert billing_rows(cli_env) == before


def test_verify_reports_a_tampered_statement_and_a_lost_line_and_exits_1(cli_env, policy_book):
    store_example(cli_env, policy_book)
    execute(cli_env, "UPDATE {statements} SET gross = '0.00' WHERE customer_id = 'acme'")
    execute(cli_env, "DELETE FROM {lines} WHERE customer_id = 'globex' AND line = 1")
    tampered = runner.invoke(app, ["projections", "verify", "--view", "billing", "--format", "json"])
    assert tampered.exit_code == 1, tampered.output
    report = json.loads(tampered.stdout)
    kinds = {(d["view"], d["table"], d["kind"]) for d in report["listed"]}
    assert {("billing", tables.STATEMENTS, "differs"), ("billing", tables.LINES, "missing")} <= kinds
    assert any("gross" in d["columns"] for d in report["listed"] if d["kind"] == "differs")
    assert [v["view"] for v in report["views"]] == ["billing"]


def _drop_billing_tables(settings: Settings) -> None:
    """As if the projector never ran: no billing tables, and no analysts' view reading them."""
    db = build_projection_database(settings)
    try:
        with db.transaction() as cursor:
            drop_views(db, cursor)
            for table in tables.TABLES:
                cursor.execute(f"DROP TABLE {db.table(table)}")
    finally:
        db.close()


@pytest.mark.kafka
def test_the_live_projector_keeps_folding_billing_through_a_rebuild(pipeline, kafka_bootstrap, policy_book):
    """Commands are stored and relayed while the projector runs and billing is rebuilt; it ends equal."""
    report, projector, customer = sla_rebuild.rebuild_while_live("billing", pipeline, kafka_bootstrap, policy_book)

    assert report.events > 0 and report.failures == 0
    assert projector.stats.dead_letters == 0
    statements = [Statement.model_validate_json(s) for _, _, s in billing_rows(pipeline)[0]]
    assert sum(len(s.incident_lines) for s in statements if s.customer_id == customer) == 40 + 5 * 20


def test_a_switch_over_queues_behind_a_batch_that_holds_the_closings_and_reads_the_statements(
    postgres_settings, policy_book
):
    """A batch locks the closings row first, then reads statements: the switch-over must wait for it, not
    deadlock with it. It once locked the statements first, and PostgreSQL aborted one of the two."""
    settings = postgres_settings
    store_example(settings, policy_book)
    batch, watcher = build_projection_database(settings), build_projection_database(settings)
    reader = build_desk(settings, policy_book)
    failures: list[BaseException] = []
    switch = threading.Thread(target=_rebuild_billing, args=(settings, reader, policy_book, failures))
    try:
        with batch.transaction() as cursor:
            cursor.execute(f"SELECT state FROM {batch.table(tables.CLOSINGS)} WHERE singleton = 1 FOR UPDATE")
            switch.start()
            assert wait_until(lambda: _lock_waits(watcher) > 0, 30, every=0.05), "the switch-over never waited"
            cursor.execute(f"SELECT count(*) FROM {batch.table(tables.STATEMENTS)}")
        switch.join(timeout=60)
    finally:
        batch.close()
        watcher.close()
        reader.close()
    assert not switch.is_alive() and not failures


def _rebuild_billing(settings: Settings, reader, policy_book, failures: list) -> None:
    db = build_projection_database(settings)
    try:
        rebuild(db, views(policy_book)["billing"], store_log(reader, "billing"))
    except BaseException as error:  # noqa: BLE001 - reported by the test
        failures.append(error)
    finally:
        db.close()


def _lock_waits(db) -> int:
    return db.query("SELECT count(*) FROM pg_locks WHERE NOT granted")[0][0]
