"""Helpers every CLI module shares: reading instants and policies, and refusing bad input in one line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from domain.errors import DomainError
from domain.policy import PolicyBook
from infra.policy_files import load_policy
from infra.retry import Unavailable
from infra.settings import Settings

PolicyOption = Annotated[
    Path | None,
    typer.Option(
        "--policy",
        metavar="FILE",
        help="Policy TOML file; default: NETTASK_POLICY_FILE, else the shipped policy.",
        show_default=False,
    ),
]


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant; one without a UTC offset is ambiguous and refused."""
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 instant, like 2026-03-30T09:00:00+02:00") from None
    if instant.utcoffset() is None:
        raise ValueError(f"{text!r} has no UTC offset; add one, like {text}+01:00 or {text}Z")
    return instant


def policy_book(path: Path | None) -> PolicyBook:
    """The policy book from `path`, the configured policy file, or the shipped policy, in that order."""
    return load_policy(path or Settings().policy_file)


def fail(message: str) -> NoReturn:
    """Print `error: <message>` on stderr, on one line, and exit with status 1."""
    one_line = "; ".join(line.strip() for line in message.splitlines() if line.strip())
    typer.echo(f"error: {one_line}", err=True)
    raise typer.Exit(1)


def refuse(message: str) -> NoReturn:
    """A bad argument (unknown value, nothing found by it): `error: <message>` on one line, exit status 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@contextmanager
def refusals_reported() -> Iterator[None]:
    """Turn refusals, unparsable input and an unreachable store into `fail`: none of them shows a traceback.

    Usable as a decorator (`@refusals_reported()`) or a `with` block.
    """
    try:
        yield
    except (DomainError, ValueError, Unavailable) as exc:
        fail(str(exc))
