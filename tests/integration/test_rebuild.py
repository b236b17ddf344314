"""`nettask projections rebuild | verify` on SQLite and PostgreSQL: rebuilt views equal live ones, tampering shows."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from consumers.write_side import WriteSide
from domain import commands as c
from infra.cli import app
from infra.compose.components import build_projector, build_relay
from infra.compose.desk import build_desk
from infra.compose.projections import build_projection_database
from infra.compose.rebuild import store_log, views
from infra.settings import Settings
from projections.rebuild import rebuild
from projections.sla import queries
from projections.sla import tables as sla
from projections.verify import verify
from tests.integration.helpers import (
    T0,
    delete_pipeline_topics,
    open_ticket,
    pipeline_settings,
    relay_everything,
    respond,
    subscribe,
    unique,
    wait_until,
)
from tests.integration.test_api import store_example

runner = CliRunner()


@pytest.fixture
def cli_env(store_settings: Settings, monkeypatch) -> Settings:
    """`nettask` pointed at the test's store and projections (SQLite files or a PostgreSQL schema)."""
    monkeypatch.setenv("NETTASK_STORE", store_settings.store)
    monkeypatch.setenv("NETTASK_VAR_DIR", str(store_settings.var_dir))
    if store_settings.store == "sqlite":
        monkeypatch.setenv("NETTASK_SQLITE_PATH", str(store_settings.sqlite_file()))
    monkeypatch.setenv("NETTASK_POSTGRES_SCHEMA", store_settings.postgres_schema)
    return store_settings


def live_view(settings: Settings) -> tuple[list, list]:
    db = build_projection_database(settings)
    try:
        tickets = queries.tickets(db)
        return tickets, [queries.metrics_of(db, t["ticket_id"]) for t in tickets]
    finally:
        db.close()


def execute(settings: Settings, statement: str, **tables: str) -> None:
    """One statement on the projection tables, each `{name}` in it standing for the table given by that name."""
    db = build_projection_database(settings)
    try:
        with db.transaction() as cursor:
            cursor.execute(statement.format(**{name: db.table(table) for name, table in tables.items()}))
    finally:
        db.close()


def test_a_rebuild_equals_the_live_view_and_can_be_done_again(cli_env, policy_book):
    store_example(cli_env, policy_book)
    before = live_view(cli_env)
    for _ in range(2):  # the second finds the names of keys and indexes free again
        result = runner.invoke(app, ["projections", "rebuild", "sla"])
        assert result.exit_code == 0, result.output
        assert "rebuilt sla" in result.stderr
        assert live_view(cli_env) == before
    assert runner.invoke(app, ["projections", "verify"]).exit_code == 0


def test_verify_reports_a_tampered_row_and_exits_1(cli_env, policy_book):
    store_example(cli_env, policy_book)
    clean = runner.invoke(app, ["projections", "verify", "--format", "json"])
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.stdout)["differences"] == 0

    execute(cli_env, "UPDATE {metrics} SET minutes_late = 999 WHERE metric = 'first_response'", metrics=sla.METRICS)
    execute(
        cli_env, "DELETE FROM {tickets} WHERE ticket_id IN (SELECT MIN(ticket_id) FROM {tickets})", tickets=sla.TICKETS
    )
    tampered = runner.invoke(app, ["projections", "verify", "--format", "json"])
    assert tampered.exit_code == 1, tampered.output
    report = json.loads(tampered.stdout)
    kinds = {(d["table"], d["kind"]) for d in report["listed"]}
    assert {("sla_metrics", "differs"), ("sla_tickets", "missing")} <= kinds
    assert any("minutes_late" in d["columns"] for d in report["listed"] if d["kind"] == "differs")
    table = runner.invoke(app, ["projections", "verify"])
    assert table.exit_code == 1 and "minutes_late" in table.stdout


def test_an_unknown_view_is_one_error_line_and_exit_code_2(cli_env):
    result = runner.invoke(app, ["projections", "rebuild", "sales"])
    assert result.exit_code == 2 and result.stderr.startswith("error: unknown view 'sales'")


@pytest.fixture
def pipeline(store_settings: Settings, kafka_bootstrap: str):
    settings = pipeline_settings(store_settings, kafka_bootstrap).model_copy(update={"projector_batch": 50})
    yield settings
    delete_pipeline_topics(kafka_bootstrap, settings)


def tickets_of(customer: str, count: int, offset: int) -> list[c.Command]:
    commands: list[c.Command] = []
    for number in range(offset, offset + count):
        opening = open_ticket(customer, T0 + timedelta(minutes=number))
        commands += [opening, respond(opening.ticket_id, T0 + timedelta(hours=1, minutes=number))]
    return commands


@pytest.mark.kafka
def test_the_live_projector_keeps_running_through_a_rebuild(pipeline, kafka_bootstrap, policy_book):
    """Commands are stored and relayed while the projector runs and the view is rebuilt; it ends equal."""
    report, projector, _ = rebuild_while_live("sla", pipeline, kafka_bootstrap, policy_book)

    assert report.events > 0 and report.failures == 0
    assert projector.stats.dead_letters == 0 and projector.stats.applied > 0
    assert len(live_view(pipeline)[0]) == 40 + 5 * 20


def rebuild_while_live(view_name: str, pipeline: Settings, kafka_bootstrap: str, policy_book) -> tuple:
    """Rebuild the named view while a live projector folds five more rounds of tickets into it, until verify
    finds it equal to the store; returns the rebuild's report, the projector and the tickets' customer."""
    customer = unique("cust")
    desk, relay = build_desk(pipeline, policy_book), build_relay(pipeline, kafka_bootstrap)
    projector, stop = build_projector(pipeline, kafka_bootstrap), threading.Event()
    failures: list[BaseException] = []
    worker = threading.Thread(target=_run_projector, args=(projector, stop, failures))
    feeder = threading.Thread(target=_feed, args=(desk, relay, customer, failures))
    try:
        desk.handle(subscribe(customer))
        WriteSide(desk).handle_batch(tickets_of(customer, 40, 0))
        relay_everything(relay)
        worker.start()
        feeder.start()
        # The rebuild reads the store through a desk of its own, as `nettask projections rebuild` does.
        reader = build_desk(pipeline, policy_book)
        db, log, view = build_projection_database(pipeline), store_log(reader, view_name), views(policy_book)[view_name]
        try:
            report = rebuild(db, view, log)
            feeder.join(timeout=60)
            assert wait_until(lambda: verify(db, view, log).equal, 60, every=1.0)
        finally:
            db.close()
            reader.close()
    finally:
        stop.set()
        worker.join(timeout=30)
        feeder.join(timeout=30)
        relay.close()
        desk.close()
    assert not failures
    return report, projector, customer


def _run_projector(projector, stop: threading.Event, failures: list) -> None:
    try:
        projector.run(stop=stop.is_set, max_seconds=120)
    except BaseException as error:  # noqa: BLE001 - reported by the test
        failures.append(error)
    finally:
        projector.close()


def _feed(desk, relay, customer: str, failures: list) -> None:
    """Five rounds of new tickets, each stored and relayed, while the rebuild runs."""
    try:
        for round_ in range(5):
            WriteSide(desk).handle_batch(tickets_of(customer, 20, 100 + 20 * round_))
            relay_everything(relay)
    except BaseException as error:  # noqa: BLE001 - reported by the test
        failures.append(error)
