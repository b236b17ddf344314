"""`nettask calendar` and `nettask sla due`, and the first-response rule behind them."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from domain.errors import PolicyError
from domain.policy import ClockKind
from domain.targets import calendar_for, first_response_target
from infra.cli import app
from infra.policy_files import load_policy

SHIPPED = load_policy()
NETTASK = Path(sys.executable).with_name("nettask")


@pytest.fixture(autouse=True)
def shipped_policy_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NETTASK_POLICY_FILE", raising=False)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def sla_due(plan: str, severity: str, language: str, opened: str, *extra: str) -> tuple[int, str, str]:
    return run("sla", "due", "--plan", plan, "--severity", severity, "--language", language, "--opened", opened, *extra)


DUE = [
    ("basic C en friday 16:00", "basic", "C", "en", "2026-02-06T16:00+01:00", "2026-02-09T14:00:00+01:00"),
    ("professional A de saturday", "professional", "A", "de", "2026-02-07T03:00+01:00", "2026-02-07T05:00:00+01:00"),
    ("professional A en saturday", "professional", "A", "en", "2026-02-07T03:00+01:00", "2026-02-09T10:00:00+01:00"),
    ("professional A en at 17:00", "professional", "A", "en", "2026-02-09T17:00+01:00", "2026-02-10T09:00:00+01:00"),
    ("plus C: min(6, 8) = 6h", "plus", "C", "en", "2026-02-09T09:00+01:00", "2026-02-09T15:00:00+01:00"),
    ("standard B: 4h", "standard", "B", "de", "2026-02-09T09:00+01:00", "2026-02-09T13:00:00+01:00"),
    ("standard C: min(4, 8) = 4h", "standard", "C", "en", "2026-02-09T09:00+01:00", "2026-02-09T13:00:00+01:00"),
    ("basic A de over spring DST", "basic", "A", "de", "2026-03-29T01:30+01:00", "2026-03-29T04:30:00+02:00"),
    ("basic A de over autumn DST", "basic", "A", "de", "2026-10-25T01:30+02:00", "2026-10-25T02:30:00+01:00"),
    ("basic C de over easter", "basic", "C", "de", "2026-04-02T14:00+02:00", "2026-04-07T12:00:00+02:00"),
    ("plus B en on unity day", "plus", "B", "en", "2026-10-03T10:00+02:00", "2026-10-05T12:00:00+02:00"),
    ("opened given in UTC", "basic", "B", "en", "2026-02-06T15:00Z", "2026-02-09T10:00:00+01:00"),
]


@pytest.mark.parametrize(
    ("plan", "severity", "language", "opened", "due"), [c[1:] for c in DUE], ids=[c[0] for c in DUE]
)
def test_sla_due_prints_the_first_response_due_time(
    plan: str, severity: str, language: str, opened: str, due: str
) -> None:
    assert sla_due(plan, severity, language, opened) == (0, due + "\n", "")


@pytest.mark.parametrize(
    ("plan", "severity", "language", "target", "clock"),
    [
        ("basic", "A", "de", 2, ClockKind.ROUND_THE_CLOCK),
        ("basic", "A", "en", 2, ClockKind.BUSINESS_HOURS),
        ("basic", "C", "de", 8, ClockKind.BUSINESS_HOURS),
        ("plus", "C", "en", 6, ClockKind.BUSINESS_HOURS),
        ("standard", "B", "de", 4, ClockKind.BUSINESS_HOURS),
        ("professional", "C", "de", 2, ClockKind.BUSINESS_HOURS),
    ],
)
def test_first_response_target(plan: str, severity: str, language: str, target: int, clock: ClockKind) -> None:
    assert first_response_target(SHIPPED.latest, plan, severity, language) == (timedelta(hours=target), clock)


def test_one_calendar_per_policy_version() -> None:
    assert calendar_for(SHIPPED.latest) is calendar_for(load_policy().latest)


@pytest.mark.parametrize(
    ("args", "output"),
    [
        (("add", "--from", "2026-03-27T17:00+01:00", "--hours", "2"), "2026-03-30T09:00:00+02:00"),
        (("add", "--from", "2026-02-06T17:00+01:00", "--hours", "1.5"), "2026-02-09T08:30:00+01:00"),
        (("add", "--from", "2026-02-06T17:00+01:00", "--minutes", "90"), "2026-02-09T08:30:00+01:00"),
        (("add", "--from", "2026-02-10T16:00+01:00", "--hours", "2"), "2026-02-10T18:00:00+01:00"),
        (("add", "--from", "2026-02-07T10:00+01:00", "--minutes", "0"), "2026-02-07T10:00:00+01:00"),
        (("add", "--from", "2026-02-06T16:00Z", "--hours", "2"), "2026-02-09T09:00:00+01:00"),
        (("between", "--from", "2026-02-06T17:00+01:00", "--to", "2026-02-09T09:00+01:00"), "120"),
        (("between", "--from", "2026-04-02T14:00+02:00", "--to", "2026-04-07T12:00+02:00"), "480"),
        (("between", "--from", "2026-02-09T10:00+01:00", "--to", "2026-02-09T10:00:59+01:00"), "0"),
        (("between", "--from", "2026-02-09T12:00+01:00", "--to", "2026-02-09T10:00+01:00"), "0"),
    ],
    ids=["over DST", "decimal hours", "minutes", "to closing", "zero", "utc", "weekend", "easter", "59s", "reversed"],
)
def test_calendar_commands(args: tuple[str, ...], output: str) -> None:
    assert run("calendar", *args) == (0, output + "\n", "")


OTHER_VERSION = {
    'version = "2021-07-01"\neffective_from = 2021-07-01': 'version = "2026-06-01"\neffective_from = 2026-06-01',
    'first_response_hours = "8"\nincluded_incidents = 0': 'first_response_hours = "1"\nincluded_incidents = 0',
}


@pytest.fixture
def two_versions(tmp_path: Path) -> Path:
    """The shipped policy, and from 2026-06-01 a version whose basic plan answers within 1 hour."""
    text = (Path(__file__).parents[2] / "domain" / "data" / "policy.toml").read_text()
    later = text
    for old, new in OTHER_VERSION.items():
        assert old in later
        later = later.replace(old, new)
    path = tmp_path / "policy.toml"
    later_table = "[[policy]]\n" + later.split("\n[[policy]]\n", 1)[1]
    path.write_text(text + "\n" + later_table)
    return path


@pytest.mark.parametrize(
    ("opened", "due"),
    [("2026-05-29T09:00+02:00", "2026-05-29T17:00:00+02:00"), ("2026-06-01T09:00+02:00", "2026-06-01T10:00:00+02:00")],
    ids=["before", "after"],
)
def test_the_policy_in_force_at_opening_decides(two_versions: Path, opened: str, due: str) -> None:
    assert sla_due("basic", "C", "en", opened, "--policy", str(two_versions)) == (0, due + "\n", "")


def test_a_configured_federal_state_adds_its_holidays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (Path(__file__).parents[2] / "domain" / "data" / "policy.toml").read_text()
    path = tmp_path / "bavaria.toml"
    path.write_text(text.replace('# subdivision = "BY"', 'subdivision = "BY"'))
    args = ("calendar", "add", "--from", "2026-01-05T17:00+01:00", "--hours", "2")
    assert run(*args, "--policy", str(path))[1] == "2026-01-07T09:00:00+01:00\n"
    monkeypatch.setenv("NETTASK_POLICY_FILE", str(path))
    assert run(*args)[1] == "2026-01-07T09:00:00+01:00\n"


def due_args(
    plan: str = "basic", severity: str = "C", language: str = "en", opened: str = "2026-02-06T16:00Z"
) -> tuple[str, ...]:
    return ("sla", "due", "--plan", plan, "--severity", severity, "--language", language, "--opened", opened)


def add_args(start: str = "2026-02-06T16:00Z", *work: str) -> tuple[str, ...]:
    return ("calendar", "add", "--from", start, *work)


REFUSALS = [
    ("naive time", due_args(opened="2026-02-06T16:00"), "no UTC offset"),
    ("unknown plan", due_args(plan="gold"), "unknown plan 'gold'"),
    ("bad severity", due_args(severity="D"), "unknown severity 'D'"),
    ("unknown language", due_args(language="fr"), "unknown language 'fr'"),
    ("not a time", due_args(opened="friday"), "not an ISO 8601 instant"),
    ("before any policy", due_args(opened="2020-01-01T00:00Z"), "no policy in force"),
    ("missing policy file", (*due_args(), "--policy", "/nonexistent/policy.toml"), "cannot read policy file"),
    ("naive --from", add_args("2026-02-06T16:00", "--hours", "1"), "like 2026-02-06T16:00+01:00 or 2026-02-06T16:00Z"),
    ("hours and minutes", add_args("2026-02-06T16:00Z", "--hours", "1", "--minutes", "60"), "exactly one of"),
    ("no work", add_args(), "exactly one of --hours and --minutes"),
    ("part of a minute", add_args("2026-02-06T16:00Z", "--hours", "0.01"), "not a whole number of minutes"),
    ("hours not a number", add_args("2026-02-06T16:00Z", "--hours", "two"), "must be a number of hours"),
    ("negative work", add_args("2026-02-06T16:00Z", "--minutes", "-5"), "must not be negative"),
    ("naive --to", ("calendar", "between", "--from", "2026-02-06T16:00Z", "--to", "2026-02-09T16:00"), "no UTC offset"),
]


@pytest.mark.parametrize(("args", "message"), [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_bad_input_is_one_line_of_error(args: tuple[str, ...], message: str) -> None:
    code, out, err = run(*args)
    assert (code, out) == (1, "")
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message in err


def test_load_policy_refuses_a_file_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "absent.toml")
    assert load_policy().latest.version == "2021-07-01"


def test_the_console_script_runs() -> None:
    args = ["sla", "due", "--plan", "professional", "--severity", "A", "--language", "en"]
    done = subprocess.run(
        [NETTASK, *args, "--opened", "2026-02-07T03:00+01:00"], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "2026-02-09T10:00:00+01:00\n", "")
    refused = subprocess.run([NETTASK, *args, "--opened", "soon"], capture_output=True, text=True, check=False)
    assert refused.returncode == 1
    assert refused.stderr == "error: 'soon' is not an ISO 8601 instant, like 2026-03-30T09:00:00+02:00\n"
