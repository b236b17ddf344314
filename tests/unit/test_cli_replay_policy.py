"""`nettask replay` and `nettask policy`: what-if replays, validation messages, no tracebacks."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "march-2026.jsonl"
POLICY = Path(__file__).resolve().parents[2] / "domain" / "data" / "policy.toml"
runner = CliRunner()


def replayed(*args: str) -> dict:
    result = runner.invoke(app, ["replay", str(EXAMPLE), *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_replay_reports_bad_lines_by_number_and_runs_the_rest():
    report = replayed("--now", "2026-03-31T12:00:00+02:00")
    assert report["commands"] == {"applied": 18, "unchanged": 0, "refused": 1, "invalid": 1}
    assert [p["line"] for p in report["problems"]] == [10, 20]
    assert "plan plus does not include department guidance" in report["problems"][0]["error"]


def test_replay_prints_statements_in_exact_money():
    statements = {s["customer_id"]: s for s in replayed("--now", "2026-03-31T12:00:00+02:00")["statements"]}
    acme = statements["acme"]
    # plus: 2 included; A-3 severity A after hours 510; A-6 C business hours 85.
    assert [line["price"] for line in acme["incident_lines"]] == ["0.00", "0.00", "510.00", "85.00"]
    assert (acme["net"], acme["vat"], acme["gross"]) == ("694.99", "132.05", "827.04")
    assert Decimal(acme["gross"]) == Decimal(acme["net"]) + Decimal(acme["vat"])
    assert statements["globex"]["callbacks_used"] == 1


def test_replay_shows_sla_state_in_berlin_time_with_breaches_noticed_at_now():
    tickets = replayed("--now", "2026-03-31T12:00:00+02:00")["tickets"]
    paused_and_late = next(t for t in tickets if t["department"] == "logs")
    metric = paused_and_late["metrics"][0]
    # 2 h business target: 1 h used before the pause, 1 h after resuming Friday 10:00; the reply came 11:05.
    assert (metric["state"], metric["due_at"]) == ("breached", "2026-03-13T11:00:00+01:00")


def test_replay_as_of_earlier_leaves_running_metrics_running():
    tickets = replayed("--now", "2026-03-30T09:00:00+02:00")["tickets"]
    last = next(t for t in tickets if t["opened_at"].startswith("2026-03-30"))
    assert last["metrics"][0]["state"] == "running"


def test_replay_of_a_missing_file_is_one_line_error():
    result = runner.invoke(app, ["replay", "/nonexistent/commands.jsonl"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot read /nonexistent/commands.jsonl")


def test_policy_check_accepts_the_shipped_policy():
    result = runner.invoke(app, ["policy", "check", str(POLICY)])
    assert result.exit_code == 0
    assert "2021-07-01" in result.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('monthly_fee = "99.99"', 'monthly_fee = "lots"'), "policy[0].plans.plus.monthly_fee"),
        (('vat_rate = "0.19"', 'vat_rate = "1.19"'), "policy[0].vat_rate"),
        (('timezone = "Europe/Berlin"', 'timezone = "Europe/Atlantis"'), "unknown time zone"),
        (('departments = ["accounting", "trouble"]', 'departments = ["accounting", "sales"]'), "unknown departments"),
        (("[policy.incident_prices.A]", "[policy.incident_prices.X]"), "policy[0].incident_prices"),
        (("\n[[policy]]\n", "\n[[policies]]\n"), "expected only [[policy]] tables"),
    ],
)
def test_policy_check_names_the_wrong_field(tmp_path, change, message):
    broken = tmp_path / "policy.toml"
    broken.write_text(POLICY.read_text().replace(*change, 1))
    result = runner.invoke(app, ["policy", "check", str(broken)])
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_policy_show_at_a_date():
    result = runner.invoke(app, ["policy", "show", "--at", "2026-03-01"])
    assert result.exit_code == 0
    assert "599.99" in result.stdout


def test_policy_show_before_the_first_version_says_so():
    result = runner.invoke(app, ["policy", "show", "--at", "2020-01-01"])
    assert result.exit_code == 1
    assert "no policy in force" in result.stderr


def test_replay_explains_each_metric_on_request():
    tickets = replayed("--now", "2026-03-31T12:00:00+02:00", "--explain")["tickets"]
    logs = next(t for t in tickets if t["department"] == "logs")
    [explanation] = logs["explanations"]
    assert explanation["pauses"][0]["paused_because"] == "need the full log file"
    assert explanation["breached_at"] == "2026-03-13T11:00:00+01:00"
    assert "explanations" not in replayed()["tickets"][0]
