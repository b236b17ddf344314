"""`nettask replay`: the what-if tool, commands replayed in memory under a chosen policy."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from infra.cli._common import PolicyOption, fail, parse_instant, policy_book, refusals_reported
from infra.display import local, ticket_view, to_json
from infra.replay import replay as run_replay


def replay(
    commands: Annotated[Path, typer.Argument(metavar="COMMANDS.jsonl", help="One command JSON per line; - for stdin.")],
    policy: PolicyOption = None,
    now: Annotated[
        str | None, typer.Option(metavar="ISO8601", help="The instant to report as of; default: the last command's.")
    ] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Add, per SLA metric, why its due time is what it is.")
    ] = False,
) -> None:
    """Replay commands in memory; print the tickets' SLA state and each customer-month's statement as JSON."""
    with refusals_reported():
        book = policy_book(policy)
        as_of = parse_instant(now) if now else None
    lines = read_lines(commands)
    report = run_replay(lines, book, as_of, explained=explain)
    for problem in report.problems:
        typer.echo(f"{commands}:{problem.line}: {problem.error}", err=True)
    zone = book.latest.calendar.zone
    output = {
        "now": report.now,
        "policy_versions": [p.version for p in book.policies],
        "commands": report.counts,
        "problems": [{"line": p.line, "error": p.error} for p in report.problems],
        "tickets": [ticket_view(t) | _explained(report, t.id) for t in report.tickets],
        "statements": [s.model_dump(mode="json") | {"as_of": s.as_of} for s in report.statements],
    }
    sys.stdout.buffer.write(to_json(local(output, zone)) + b"\n")


def read_lines(path: Path) -> list[str]:
    if str(path) == "-":
        return sys.stdin.read().splitlines()
    try:
        return path.read_text("utf-8").splitlines()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        fail(f"{path} is not UTF-8 text")


def _explained(report, ticket_id) -> dict:
    return {"explanations": report.explanations[ticket_id]} if report.explanations else {}
