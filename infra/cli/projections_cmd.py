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

from infra.cli._common import bad_argument, fail
from infra.compose.desk import build_desk
from infra.compose.projections import build_projection_database
from infra.compose.rebuild import VIEWS, StoreLog
from infra.display import to_json
from infra.retry import Unavailable
from infra.settings import Settings
from projections.database import ProjectionDatabase
from projections.rebuild import RebuildableView, rebuild
from projections.verify import Verdict, verify

app = typer.Typer(no_args_is_help=True, help=__doc__)
ViewArgument = Annotated[str, typer.Argument(metavar="NAME", help=f"The view: {', '.join(VIEWS)}.")]


@app.command("rebuild")
def rebuild_view(name: ViewArgument) -> None:
    """Rebuild the view from the event store into fresh tables, then switch over in one transaction."""
    view = _view(name)
    with _sources() as (db, log), _progress(f"rebuilding {name}") as progress:
        report = rebuild(db, view, log, progress)
    typer.echo(
        f"rebuilt {report.view}: {report.events} events up to notification {report.position}, "
        f"{report.failures} the view refused",
        err=True,
    )


@app.command("verify")
def verify_views(
    name: Annotated[str, typer.Option("--view", metavar="NAME", help="The view to verify.")] = "sla",
    format: Annotated[str, typer.Option("--format", metavar="table|json", help="Output format.")] = "table",
) -> None:
    """Replay the event store into scratch tables and compare with the live view; exit 1 on any difference."""
    view = _view(name)
    if format not in ("table", "json"):
        bad_argument(f"unknown format {format!r}; use table or json")
    with _sources() as (db, log), _progress(f"replaying {name}") as progress:
        verdict = verify(db, view, log, progress)
    _show(verdict, format)
    raise typer.Exit(0 if verdict.equal else 1)


def _view(name: str) -> RebuildableView:
    if name not in VIEWS:
        bad_argument(f"unknown view {name!r}; use one of {', '.join(VIEWS)}")
    return VIEWS[name]


@contextmanager
def _sources() -> Iterator[tuple[ProjectionDatabase, StoreLog]]:
    settings = Settings()
    try:
        desk = build_desk(settings)
        db = build_projection_database(settings)
        db.create_schema()
    except Unavailable as error:
        fail(str(error))
    try:
        yield db, StoreLog(desk)
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


def _show(verdict: Verdict, format: str) -> None:
    if format == "json":
        differences = [
            {"table": d.table, "key": d.key, "kind": d.kind, "columns": d.columns} for d in verdict.differences
        ]
        body = {"view": verdict.view, "events": verdict.events, "differences": verdict.counted, "listed": differences}
        sys.stdout.buffer.write(to_json(body) + b"\n")
        return
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
