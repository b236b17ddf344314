"""`nettask projections rebuild | verify`: a view rebuilt from the event store, or checked against it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from domain.desk import TicketDesk
from infra.cli._common import bad_argument, fail, policy_book
from infra.compose.desk import build_desk
from infra.compose.parallel_rebuild import parallel_fill, worker_count
from infra.compose.projections import build_projection_database
from infra.compose.rebuild import VIEW_NAMES, store_log, views
from infra.display import to_json
from infra.retry import Unavailable
from infra.settings import Settings
from infra.store_log import InvalidStoredEvent
from projections.database import ProjectionDatabase
from projections.rebuild import RebuildFailed, rebuild
from projections.verify import Verdict, verify

app = typer.Typer(no_args_is_help=True, help=__doc__)
ViewArgument = Annotated[str, typer.Argument(metavar="NAME", help=f"The view: {', '.join(VIEW_NAMES)}.")]


@app.command("rebuild")
def rebuild_view(
    name: ViewArgument,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, metavar="N",
            help="Processes that fill the fresh tables, each with a share of the tickets (the SLA view; billing "
            "takes one); default NETTASK_REBUILD_WORKERS, else one per CPU.",
        ),
    ] = None,
) -> None:  # fmt: skip
    """Rebuild the view from the event store into fresh tables, then switch over in one transaction."""
    _known(name)
    settings = Settings()
    with _sources(settings) as (db, desk):
        view = views(desk.policies)[name]
        fill = parallel_fill(settings, view, worker_count(settings, name, workers))
        try:
            with _progress(f"rebuilding {name}") as progress:
                report = rebuild(db, view, store_log(desk, name), progress, fill)
        except (RebuildFailed, InvalidStoredEvent) as error:  # said after the progress bar's last line
            fail(f"{error}; the live tables are unchanged")
    typer.echo(
        f"rebuilt {report.view}: {report.events} events up to notification {report.position}, "
        f"{report.failures} the view refused",
        err=True,
    )


@app.command("verify")
def verify_views(
    name: Annotated[
        str | None, typer.Option("--view", metavar="NAME", help="The view to verify; default: every view.")
    ] = None,
    format: Annotated[str, typer.Option("--format", metavar="table|json", help="Output format.")] = "table",
) -> None:
    """Replay the event store into scratch tables and compare with the live views; exit 1 on any difference."""
    names = (name,) if name else VIEW_NAMES
    for each in names:
        _known(each)
    if format not in ("table", "json"):
        bad_argument(f"unknown format {format!r}; use table or json")
    verdicts = []
    with _sources(Settings()) as (db, desk):
        for each in names:
            with _progress(f"replaying {each}") as progress:
                verdicts.append(verify(db, views(desk.policies)[each], store_log(desk, each), progress))
    _show(verdicts, format)
    raise typer.Exit(0 if all(v.equal for v in verdicts) else 1)


def _known(name: str) -> None:
    if name not in VIEW_NAMES:
        bad_argument(f"unknown view {name!r}; use one of {', '.join(VIEW_NAMES)}")


@contextmanager
def _sources(settings: Settings) -> Iterator[tuple[ProjectionDatabase, TicketDesk]]:
    """The projections' database and the store's desk (whose log the views replay, with its policy book)."""
    try:
        desk = build_desk(settings, policy_book(None))
        db = build_projection_database(settings)
        db.create_schema()
    except (Unavailable, ValueError) as error:
        fail(str(error))
    try:
        yield db, desk
    finally:
        db.close()
        desk.close()


@contextmanager
def _progress(title: str) -> Iterator[Any]:
    """A progress bar on stderr (stdout stays for the result), in notifications of the store's log."""
    columns = (TextColumn(title), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task(title, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


def _show(verdicts: list[Verdict], format: str) -> None:
    if format == "json":
        sys.stdout.buffer.write(to_json(_as_json(verdicts)) + b"\n")
        return
    for verdict in verdicts:
        _table(verdict)


def _as_json(verdicts: list[Verdict]) -> dict[str, Any]:
    """Every view's count, and the differences listed, each naming its view and table."""
    listed = [
        {"view": v.view, "table": d.table, "key": d.key, "kind": d.kind, "columns": d.columns}
        for v in verdicts
        for d in v.differences
    ]
    counts = [{"view": v.view, "events": v.events, "differences": v.counted} for v in verdicts]
    return {"views": counts, "differences": sum(v.counted for v in verdicts), "listed": listed}


def _table(verdict: Verdict) -> None:
    console = Console()
    if verdict.equal:
        console.print(f"{verdict.view}: equal to a replay of {verdict.events} events")
        return
    table = Table(title=f"{verdict.view}: {verdict.counted} rows differ from a replay of the store")
    for column in ("table", "key", "kind", "column", "live", "replayed"):
        table.add_column(column, overflow="fold")
    for d in verdict.differences:
        key = ", ".join(str(v) for v in d.key.values())
        for column, (held, replayed) in d.columns.items() or {"": ("", "")}.items():
            table.add_row(d.table, key, d.kind, column, str(held), str(replayed))
    console.print(table)
