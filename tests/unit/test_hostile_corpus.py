"""The hostile corpus says honestly what each record is: the intake's validation agrees with every entry's label."""

from __future__ import annotations

import pytest

from consumers.records import DeadLetter, Record, validate
from tests.hostile_corpus import Corpus

MAX_BYTES = 64 * 1024
# Told apart only by the broker (records it cannot read, bombs) or by the desk (refusals), not by validation.
NOT_DECIDED_HERE = {"unreadable", "refused"}


@pytest.fixture(scope="module")
def corpus() -> list:
    made = Corpus(20260302, ["cust-a", "cust-b"], MAX_BYTES)
    return made.entries() + made.compressed_valid()


def _checked(entry):
    return validate(Record("t", 0, 0, entry.key, entry.value, entry.headers), MAX_BYTES)


def test_the_corpus_is_large_and_mostly_hostile(corpus):
    hostile = [e for e in corpus if not e.valid]

    assert len(hostile) > 1500
    assert len(corpus) - len(hostile) >= 50
    assert len({e.name for e in corpus}) > 1000


def test_every_valid_entry_validates_to_its_own_command(corpus):
    for entry in (e for e in corpus if e.valid):
        assert _checked(entry) == entry.command, entry.name


def test_every_hostile_entry_is_dead_lettered_with_a_kind_it_expects(corpus):
    for entry in (e for e in corpus if not e.valid and not entry_kinds_outside(e)):
        checked = _checked(entry)
        assert isinstance(checked, DeadLetter), entry.name
        assert checked.kind in entry.kinds, (entry.name, checked.kind, checked.reason)
        assert checked.reason


def test_refusals_are_valid_commands_the_desk_must_refuse(corpus):
    refusals = [e for e in corpus if e.kinds == {"refused"}]

    assert refusals
    assert not any(isinstance(_checked(e), DeadLetter) for e in refusals)


def test_the_same_seed_gives_the_same_records():
    first, second = (Corpus(7, ["cust-a"], MAX_BYTES).entries() for _ in range(2))

    assert [e.name for e in first] == [e.name for e in second]


def entry_kinds_outside(entry) -> bool:
    return bool(entry.kinds & NOT_DECIDED_HERE)
