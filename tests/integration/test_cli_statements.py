"""`nettask statement` and `nettask statements` reading a real event store, SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from domain.commands import parse_command
from infra.cli import app
from infra.compose.desk import build_desk
from infra.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "march-2026.jsonl"
AS_OF = "2026-04-20T12:00:00+02:00"
runner = CliRunner()


def _valid_commands(lines: list[str]) -> list:
    commands = []
    for line in lines:
        try:
            commands.append(parse_command(line))
        except ValueError:  # the example's one invalid line
            continue
    return commands


def _close_and_escalate_late() -> list:
    """March closed by an operator, then acme's A-6 (C, business hours, billed 85.00) escalated to B."""
    close = '{"type": "CloseMonth", "command_id": "0f8c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f", "actor": "operator.jane",'
    close += ' "occurred_at": "2026-04-02T09:00:00+02:00", "source": "nettask-operator", "month": "2026-03"}'
    escalate = '{"type": "EscalateTicket", "command_id": "1f8c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f", "actor": "agent.kim",'
    escalate += ' "occurred_at": "2026-04-08T10:00:00+02:00", "ticket_id": "e351e5be-7a97-54a5-8a5f-3db611d1d44e",'
    escalate += ' "to_severity": "B"}'
    return [parse_command(close), parse_command(escalate)]


@pytest.fixture
def store_with_march(store_settings: Settings, monkeypatch, policy_book) -> Settings:
    """The configured store holds the example month, its closing and a late escalation; the CLI reads it."""
    for name, value in _environment(store_settings).items():
        monkeypatch.setenv(name, value)
    desk = build_desk(store_settings, policy_book)
    try:
        for command in [*_valid_commands(EXAMPLE.read_text().splitlines()), *_close_and_escalate_late()]:
            desk.handle(command)
    finally:
        desk.close()
    return store_settings


def _environment(settings: Settings) -> dict[str, str]:
    if settings.store == "postgres":
        return {"NETTASK_STORE": "postgres", "NETTASK_POSTGRES_SCHEMA": settings.postgres_schema}
    return {"NETTASK_STORE": "sqlite", "NETTASK_SQLITE_PATH": str(settings.sqlite_path)}


def test_one_statement_as_json_closed_and_frozen(store_with_march):
    result = runner.invoke(
        app, ["statement", "--customer", "acme", "--month", "2026-03", "--as-of", AS_OF, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    march = json.loads(result.stdout)
    assert (march["closed"], march["as_of"], march["status"]) == (
        True,
        "2026-04-02T09:00:00+02:00",
        "closed 2026-04-02 09:00 CEST",
    )
    assert [line["price"] for line in march["incident_lines"]] == ["0.00", "0.00", "510.00", "85.00"]
    assert (march["net"], march["vat"], march["gross"]) == ("694.99", "132.05", "827.04")
    assert march["incident_lines"][0]["reference"] == "crm:A-1"


def test_the_late_escalation_is_an_adjustment_on_april_in_csv(store_with_march):
    result = runner.invoke(
        app, ["statement", "--customer", "acme", "--month", "2026-04", "--as-of", AS_OF, "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    adjustment = next(row for row in rows if row["line"] == "adjustment")
    assert (adjustment["reference"], adjustment["amount"]) == ("crm:A-6", "74.00")  # B 159 - C 85
    assert adjustment["detail"].startswith("2026-03: highest severity C -> B")
    totals = {row["line"]: row["amount"] for row in rows if row["line"] in ("net", "vat", "gross")}
    assert totals == {"net": "173.99", "vat": "33.06", "gross": "207.05"}  # 99.99 + 74.00
    assert {row["status"] for row in rows} == {"open"}


def test_statements_of_a_month_list_every_customer(store_with_march):
    result = runner.invoke(app, ["statements", "--month", "2026-02", "--as-of", AS_OF, "--format", "json"])
    assert result.exit_code == 0, result.output
    february = json.loads(result.stdout)
    # No ticket in February: the fee alone, for both customers.
    assert [(s["customer_id"], s["net"], s["incident_lines"]) for s in february] == [
        ("acme", "99.99", []),
        ("globex", "599.99", []),
    ]
    table = runner.invoke(app, ["statements", "--month", "2026-03", "--as-of", AS_OF])
    assert table.exit_code == 0, table.output
    assert "acme" in table.stdout and "globex" in table.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["statement", "--customer", "acme", "--month", "2026-13"], "error: no such month: 2026-13"),
        (["statement", "--customer", "nobody", "--month", "2026-03"], "error: unknown customer 'nobody'"),
        (["statements", "--month", "March"], "error: expected a month like '2026-03', got 'March'"),
        (["statements", "--month", "2026-03", "--as-of", "2026-04-01T12:00"], "error: '2026-04-01T12:00' has no UTC"),
    ],
)
def test_a_bad_argument_is_one_error_line_and_exit_code_2(store_with_march, arguments, message):
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1
