"""`nettask tickets | ticket | breaches | at-risk | queue` against a real projections file, as analysts use them."""

from __future__ import annotations

import csv
import io
import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from domain.commands import parse_command
from infra.cli import app
from infra.compose.desk import build_desk
from infra.compose.projections import build_projection_database
from infra.settings import Settings
from projections.sla.projection import SlaProjection

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "march-2026.jsonl"
runner = CliRunner()


@pytest.fixture
def example_views(tmp_path, monkeypatch, policy_book) -> Settings:
    """The example month's commands stored, and their events folded into the SLA view (no broker needed)."""
    monkeypatch.setenv("NETTASK_VAR_DIR", str(tmp_path))
    settings = Settings()
    desk = build_desk(settings, policy_book)
    for line in EXAMPLE.read_text().splitlines():
        try:
            desk.handle(parse_command(line))
        except ValueError:
            continue  # the example's one invalid line
    events = [e for e in desk.recorded_events() if hasattr(e, "ticket_id")]
    desk.close()
    db = build_projection_database(settings)
    db.create_schema()
    projection = SlaProjection(db)
    with db.transaction() as cursor:
        projection.create_tables(cursor)
        projection.apply(cursor, events)
    db.close()
    return settings


def test_the_projections_file_is_next_to_the_event_store_and_owner_only(example_views):
    path = example_views.projections_sqlite_file()
    assert path == example_views.sqlite_file().parent / "projections.sqlite"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_tickets_as_json_csv_and_table_with_instants_in_berlin(example_views):
    as_json = runner.invoke(app, ["tickets", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    tickets = json.loads(as_json.stdout)
    assert tickets and all(t["opened_at"].endswith(("+01:00", "+02:00")) for t in tickets)

    customer = tickets[0]["customer_id"]
    as_csv = runner.invoke(app, ["tickets", "--customer", customer, "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert rows and {row["customer_id"] for row in rows} == {customer}

    table = runner.invoke(app, ["tickets", "--status", "resolved"])
    assert table.exit_code == 0 and "tickets" in table.stdout


def test_one_ticket_by_reference_with_its_metrics_and_timeline(example_views):
    first = json.loads(runner.invoke(app, ["tickets", "--format", "json"]).stdout)[-1]

    shown = runner.invoke(app, ["ticket", first["reference"], "--format", "json"])
    assert shown.exit_code == 0, shown.output
    ticket = json.loads(shown.stdout)
    assert ticket["ticket"]["ticket_id"] == first["ticket_id"]
    assert ticket["metrics"][0]["metric"] == "first_response"
    assert ticket["timeline"][0]["event_type"] == "Opened"
    assert runner.invoke(app, ["ticket", first["ticket_id"]]).exit_code == 0


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["tickets", "--status", "lost"], "unknown status 'lost'"),
        (["ticket", "REF-nowhere"], "no ticket 'REF-nowhere'"),
        (["queue", "--format", "xml"], "unknown format 'xml'"),
        (["at-risk", "--now", "2026-03-02T10:00"], "has no UTC offset"),
    ],
)
def test_a_bad_argument_is_one_error_line_and_exit_code_2(example_views, arguments, message):
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_breaches_at_risk_and_queue_answer(example_views):
    for arguments in (
        ["breaches", "--now", "2026-03-31T12:00:00+02:00"],
        ["breaches", "--history"],
        ["at-risk", "--now", "2026-03-31T12:00:00+02:00"],
        ["queue"],
    ):
        result = runner.invoke(app, [*arguments, "--format", "json"])
        assert result.exit_code == 0, (arguments, result.output)
        assert isinstance(json.loads(result.stdout), list)
    history = json.loads(runner.invoke(app, ["breaches", "--history", "--format", "json"]).stdout)
    assert all(0 <= row["breach_rate"] <= 1 for row in history)
