"""Directories and files the project creates for its state: readable and writable by their owner only."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` and any missing parents as 0700; directories that exist already are left as they are.

    Existing ones are not tightened: the operator may point the var dir at a shared place on purpose.
    """
    missing = []
    for directory in (path, *path.parents):
        if directory.exists():
            break
        missing.append(directory)
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:  # another process made it meanwhile
            continue
        directory.chmod(PRIVATE_DIR)  # mkdir's mode passes through the umask, which may allow more
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty as 0600 unless it exists, in a private directory; an existing file becomes 0600.

    SQLite gives its -wal and -shm files the mode of the database file, so they follow.
    """
    private_dir(path.parent)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE))
    path.chmod(PRIVATE_FILE)
    return path


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` (replacing what was there) as a 0600 file in a private directory."""
    private_file(path).write_text(text)
