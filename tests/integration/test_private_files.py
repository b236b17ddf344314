"""State the project creates is its owner's alone: 0700 directories, 0600 files, the SQLite store included."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.compose.desk import build_desk
from infra.files import private_dir, private_file, write_private
from infra.settings import Settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """The most permissive umask a user might have, so that only the project's own care shows."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_new_var_dir_and_the_sqlite_store_with_its_wal_and_shm_are_owner_only(tmp_path: Path):
    var_dir = tmp_path / "state" / "var"
    store = var_dir / "events.sqlite"
    companions = [store.with_name(store.name + suffix) for suffix in ("-wal", "-shm")]

    desk = build_desk(Settings(store="sqlite", var_dir=var_dir))
    try:  # SQLite removes the -wal and -shm files when the last connection closes
        modes = {path.name: mode(path) for path in [store, *companions]}
    finally:
        desk.close()

    assert {mode(tmp_path / "state"), mode(var_dir)} == {0o700}
    assert modes == {
        "events.sqlite": 0o600,
        "events.sqlite-wal": 0o600,
        "events.sqlite-shm": 0o600,
    }


def test_an_existing_store_file_is_made_owner_only_when_opened(tmp_path: Path):
    store = tmp_path / "events.sqlite"
    store.touch(mode=0o666)

    build_desk(Settings(store="sqlite", sqlite_path=store, var_dir=tmp_path)).close()

    assert mode(store) == 0o600


def test_directories_that_exist_already_are_left_as_they_are(tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)

    private_dir(shared / "a" / "b")
    write_private(shared / "a" / "b" / "c.txt", "x")

    assert mode(shared) == 0o755
    assert (mode(shared / "a"), mode(shared / "a" / "b")) == (0o700, 0o700)
    assert mode(private_file(shared / "a" / "b" / "c.txt")) == 0o600
    assert (shared / "a" / "b" / "c.txt").read_text() == "x"
