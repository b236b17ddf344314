"""`nettask sla explain` against a real event store file."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from consumers.write_side import WriteSide
from domain.commands import parse_command
from infra.cli import app
from infra.compose.desk import build_desk
from infra.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "march-2026.jsonl"
runner = CliRunner()


def test_sla_explain_reads_the_configured_store(tmp_path, monkeypatch, policy_book):
    monkeypatch.setenv("NETTASK_SQLITE_PATH", str(tmp_path / "events.sqlite"))
    desk = build_desk(Settings(), policy_book)
    commands = [parse_command(line) for line in EXAMPLE.read_text().splitlines()[:4]]
    WriteSide(desk).handle_batch(commands)
    desk.close()
    ticket_id = str(commands[2].ticket_id)

    result = runner.invoke(app, ["sla", "explain", ticket_id])
    assert result.exit_code == 0, result.output
    explanation = json.loads(result.stdout)
    assert (explanation["state"], explanation["target_minutes"]) == ("met", 360)

    missing = runner.invoke(app, ["sla", "explain", "not-a-ticket"])
    assert missing.exit_code == 1
    assert "is not a ticket id" in missing.stderr
