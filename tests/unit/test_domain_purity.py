"""The domain reads no clock and does no I/O: a textual check over domain/, so a slip fails the build."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
FORBIDDEN = {
    r"\bdatetime\.now\(": "reads the clock",
    r"\bdatetime\.utcnow\(": "reads the clock",
    r"\bdate\.today\(": "reads the clock",
    r"\btime\.time\(": "reads the clock",
    r"\btime\.monotonic\(": "reads the clock",
    r"\bopen\(": "opens a file",
    r"\bimport (socket|requests|kafka|psycopg|sqlite3)\b": "imports an I/O library",
    r"\bfrom (socket|requests|kafka|psycopg|sqlite3)\b": "imports an I/O library",
}


@pytest.mark.parametrize("path", sorted(DOMAIN.rglob("*.py")), ids=lambda p: p.name)
def test_domain_module_is_pure(path: Path):
    text = path.read_text()
    found = [f"{why}: {pattern}" for pattern, why in FORBIDDEN.items() if re.search(pattern, text)]
    assert not found, f"{path.name} {found}"
