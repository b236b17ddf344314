"""`nettask statement` and `nettask statements`: billing statements from the projection, or from the event store."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console

from domain.money import Month
from domain.policy import PolicyBook
from domain.statement import Statement
from infra.cli._common import PolicyOption, bad_argument, parse_instant, policy_book, refusals_reported
from infra.compose.desk import build_desk
from infra.compose.projections import build_projection_database
from infra.display import to_json
from infra.settings import Settings
from infra.statement_views import as_json, csv_text, month_table, statement_table
from projections.billing import BillingFold, statement, statements
from projections.billing.projection import BillingProjection
from projections.billing.reads import has_statements, stored_statement, stored_statements
from projections.database import ProjectionDatabase
from projections.sla.projection import SlaProjection

# Ticket ids, event ids and amounts must never be cut short; 80 columns would squeeze them.
PIPED_WIDTH = 160


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


MonthOption = Annotated[str, typer.Option("--month", metavar="YYYY-MM", help="The month (Europe/Berlin).")]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of", metavar="ISO8601", help="Recompute from the event store as of this instant.", show_default=False
    ),
]
FromStoreOption = Annotated[
    bool,
    typer.Option("--from-store", help="Recompute from the event store (as of now) instead of reading the projection."),
]
FormatOption = Annotated[Format, typer.Option("--format", help="table (rich), json or csv.")]


def statement_of(
    customer: Annotated[str, typer.Option("--customer", metavar="CUSTOMER", help="The customer id.")],
    month: MonthOption,
    as_of: AsOfOption = None,
    output: FormatOption = Format.table,
    policy: PolicyOption = None,
    from_store: FromStoreOption = False,
) -> None:
    """One customer's statement for a month: fee, incidents, callbacks, adjustments, net, VAT, gross."""
    period, instant, book = _arguments(month, as_of, policy)
    recompute = from_store or as_of is not None  # --as-of names another instant: only the store can say
    found = _recomputed(book, customer, period, instant) if recompute else _projected(book, customer, period)
    if found is None:
        bad_argument(f"customer {customer!r} has no plan in force in {period}, so no statement")
    zone = book.latest.calendar.zone
    if output is Format.table:
        _console().print(statement_table(found, zone))
    elif output is Format.json:
        sys.stdout.buffer.write(to_json(as_json(found, zone)) + b"\n")
    else:
        sys.stdout.write(csv_text([found], zone))


def statements_of(
    month: MonthOption,
    as_of: AsOfOption = None,
    output: FormatOption = Format.table,
    policy: PolicyOption = None,
    from_store: FromStoreOption = False,
) -> None:
    """Every customer's statement for a month."""
    period, instant, book = _arguments(month, as_of, policy)
    if from_store or as_of:
        found = statements(_fold(book), period, instant)
    else:
        with _projection(book) as db:
            found = stored_statements(db, period)
    zone = book.latest.calendar.zone
    if output is Format.table:
        _console().print(month_table(found, zone, f"Statements {period}"))
    elif output is Format.json:
        sys.stdout.buffer.write(to_json([as_json(s, zone) for s in found]) + b"\n")
    else:
        sys.stdout.write(csv_text(found, zone))


def _recomputed(book: PolicyBook, customer: str, period: Month, instant: datetime) -> Statement | None:
    fold = _fold(book)
    if customer not in fold.usage.subscriptions:
        bad_argument(f"unknown customer {customer!r}: no plan of theirs is recorded")
    return statement(fold, customer, period, instant)


def _projected(book: PolicyBook, customer: str, period: Month) -> Statement | None:
    with _projection(book) as db:
        if not has_statements(db, customer):
            bad_argument(f"unknown customer {customer!r}: the billing projection has no statement of theirs")
        return stored_statement(db, customer, period)


@contextmanager
def _projection(book: PolicyBook) -> Iterator[ProjectionDatabase]:
    """The projections' database with the billing tables in place (empty until the projector ran)."""
    with refusals_reported():
        db = build_projection_database(Settings())
    try:
        with refusals_reported(), db.transaction() as cursor:
            SlaProjection(db).create_tables(cursor)  # the analysts' views, made with the billing tables, join them
            BillingProjection(db, book).create_tables(cursor)
        yield db
    finally:
        db.close()


def _console() -> Console:
    """Rich's console; piped into a file or a pager, as wide as a statement needs rather than 80 columns."""
    console = Console()
    return console if console.is_terminal else Console(width=PIPED_WIDTH)


def _arguments(month: str, as_of: str | None, policy) -> tuple[Month, datetime, PolicyBook]:
    """The month, the instant to report as of and the policy; a bad month or instant exits with status 2."""
    try:
        period = Month.parse(month)
        instant = parse_instant(as_of) if as_of else datetime.now(UTC)  # the CLI may read the clock, the domain not
    except ValueError as error:
        bad_argument(str(error))
    with refusals_reported():
        return period, instant, policy_book(policy)


def _fold(book: PolicyBook) -> BillingFold:
    """Every stored event folded, in the order it was recorded; the store is read once and closed."""
    with refusals_reported():
        desk = build_desk(Settings(), book)
        try:
            return BillingFold(book).apply_all(desk.recorded_events())
        finally:
            desk.close()
