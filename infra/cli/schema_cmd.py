"""`nettask schema`: write the public contract (JSON Schemas, AsyncAPI, README) into docs/contract, or check it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infra.cli._common import fail
from infra.contract import contract_files

DEFAULT_OUT = Path("docs/contract")


def schema(
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Where the contract files go.")] = DEFAULT_OUT,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 naming every file that is missing or stale.")
    ] = False,
) -> None:
    """Write the contract files of the command and event messages; one line per file written."""
    files = contract_files()
    if check:
        _check(out, files)
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_bytes(text.encode("utf-8"))
        typer.echo(f"wrote {out / name}")


def stale_files(out: Path, files: dict[str, str]) -> list[str]:
    """The names of the files in `out` that are missing or differ byte for byte from `files`."""
    return [name for name, text in files.items() if not _holds(out / name, text)]


def _holds(path: Path, text: str) -> bool:
    return path.is_file() and path.read_bytes() == text.encode("utf-8")


def _check(out: Path, files: dict[str, str]) -> None:
    stale = stale_files(out, files)
    if stale:
        fail(f"stale contract files in {out}: {', '.join(stale)}; run `make schema`")
    typer.echo(f"{out}: {len(files)} contract files up to date")
