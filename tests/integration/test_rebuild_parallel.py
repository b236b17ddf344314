"""A rebuild filled by several processes on SQLite and PostgreSQL: the same tables as one process, failures clean."""

from __future__ import annotations

import sqlite3

import psycopg
from typer.testing import CliRunner

from infra.cli import app
from infra.compose.desk import build_desk
from infra.compose.parallel_rebuild import parallel_fill
from infra.compose.projections import build_projection_database
from infra.compose.rebuild import store_log, views
from infra.settings import Settings
from infra.store_log import Share
from projections.rebuild import rebuild
from projections.sla import tables as sla
from tests.integration import test_rebuild
from tests.integration.test_api import store_example

runner = CliRunner()
cli_env = test_rebuild.cli_env


def sla_tables(settings: Settings) -> dict[str, list[tuple]]:
    """Every row of the SLA view's tables, the folded states too, in key order."""
    db = build_projection_database(settings)
    try:
        ordered = "SELECT * FROM {} ORDER BY 1, 2"
        return {table: [tuple(row) for row in db.query(ordered.format(db.table(table)))] for table in sla.TABLES}
    finally:
        db.close()


def rebuild_sla(settings: Settings, policy_book, workers: int) -> None:
    desk, db = build_desk(settings, policy_book), build_projection_database(settings)
    view = views(policy_book)["sla"]
    try:
        fill = parallel_fill(settings, view, workers)
        assert (fill is None) == (workers == 1)
        report = rebuild(db, view, store_log(desk, "sla"), fill=fill)
        assert report.events > 0 and report.failures == 0
    finally:
        db.close()
        desk.close()


def test_shares_of_the_log_are_disjoint_and_together_the_whole_log(store_settings, policy_book):
    store_example(store_settings, policy_book)
    desk = build_desk(store_settings, policy_book)
    try:
        whole = store_log(desk, "sla")
        end = whole.last_id()
        every = {e.event_id for e in whole.read(0, end, end)[0]}
        shares = [{e.event_id for e in store_log(desk, "sla", Share(i, 3)).read(0, end, end)[0]} for i in range(3)]
    finally:
        desk.close()
    assert all(shares), "the example's tickets fall into every share"
    assert sum(len(share) for share in shares) == len(every) and set().union(*shares) == every


def test_a_rebuild_by_several_processes_equals_one_by_one_process(store_settings, policy_book):
    store_example(store_settings, policy_book)
    rebuild_sla(store_settings, policy_book, workers=1)
    alone = sla_tables(store_settings)
    rebuild_sla(store_settings, policy_book, workers=3)
    assert sla_tables(store_settings) == alone
    assert all(alone.values())


def test_a_failing_worker_fails_the_rebuild_in_one_line_and_leaves_the_live_tables(cli_env, policy_book):
    store_example(cli_env, policy_book)
    before = sla_tables(cli_env)
    break_one_opening(cli_env, policy_book)

    for workers, said_by in (("2", "error: rebuild worker "), ("1", "error: stored event ")):
        result = runner.invoke(app, ["projections", "rebuild", "sla", "--workers", workers])

        assert result.exit_code == 1, result.output
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(said_by) and "(Opened) does not validate: its JSON: Invalid JSON" in last
        assert last.endswith("the live tables are unchanged")
        assert "Traceback" not in result.output
        assert sla_tables(cli_env) == before


def break_one_opening(settings: Settings, policy_book) -> None:
    """One stored Opened event's JSON cut short: it no longer validates."""
    desk = build_desk(settings, policy_book)
    table = desk.recorder.events_table_name
    desk.close()
    if settings.store == "sqlite":
        with sqlite3.connect(settings.sqlite_file()) as connection:
            connection.execute(
                f"UPDATE {table} SET state = substr(state, 1, 20) WHERE rowid = "
                f"(SELECT MIN(rowid) FROM {table} WHERE topic LIKE '%:Opened')"
            )
        return
    with psycopg.connect(settings.postgres_dsn(), autocommit=True) as connection:
        qualified = f'"{settings.postgres_schema}".{table}'
        connection.execute(
            f"UPDATE {qualified} SET state = substring(state from 1 for 20) WHERE notification_id = "
            f"(SELECT MIN(notification_id) FROM {qualified} WHERE topic LIKE '%%:Opened')"
        )
