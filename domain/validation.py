"""A pydantic validation error on one line, `where: what; ...`, fit for a log, a dead-letter header or a terminal."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

Location = tuple[int | str, ...]
# pydantic leads the message of every error a validator raised with this; it tells the reader nothing.
VALUE_ERROR_PREFIX = "Value error, "


def dotted(location: Location) -> str:
    """('OpenTicket', 'occurred_at') -> 'OpenTicket.occurred_at'; the input as a whole (no location) -> 'json'."""
    return ".".join(str(part) for part in location) or "json"


def validation_problems(
    error: ValidationError, *, where: Callable[[Location], str] = dotted, first_only: bool = False
) -> str:
    """Every problem (or the first) as `where: message`, joined by '; '; a problem `where` names as '' is its
    message alone."""
    problems = error.errors(include_url=False)
    return "; ".join(_problem(problem, where) for problem in (problems[:1] if first_only else problems))


def _problem(problem: dict, where: Callable[[Location], str]) -> str:
    message = problem["msg"].removeprefix(VALUE_ERROR_PREFIX)
    place = where(tuple(problem["loc"]))
    return f"{place}: {message}" if place else message
