"""The write path decides today what it decided when the golden file was recorded: every outcome, every event."""

from __future__ import annotations

import orjson

from domain.commands import COMMAND_TYPES
from tests.golden_corpus import GOLDEN_FILE, decided, read_golden
from tests.unit.builders import shipped_book


def test_every_command_of_the_golden_corpus_is_decided_as_recorded():
    golden = read_golden()
    now = list(decided(shipped_book()))

    assert len(now) == len(golden) > 3000
    for number, (expected, actual) in enumerate(zip(golden, now, strict=True), start=1):
        if expected != actual:
            command = orjson.loads(expected)["command"]
            raise AssertionError(
                f"command {number} ({command['type']} {command['command_id']}) is decided differently from "
                f"{GOLDEN_FILE.name}; if the change is deliberate, record anew with `python -m tests.golden_corpus "
                f"--write`.\nrecorded: {expected.decode()}\nnow:      {actual.decode()}"
            )


def test_the_golden_corpus_covers_every_command_type_and_refusals():
    lines = [orjson.loads(line) for line in read_golden()]

    assert {line["command"]["type"] for line in lines} == {t.__name__ for t in COMMAND_TYPES}
    assert {line["status"] for line in lines} == {"applied", "unchanged", "refused"}
    assert {line["kind"] for line in lines} >= {"refused", "missing-fact"}
