"""Events decided without validating them again are exactly what validation would have built, and stored the same."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4, uuid5

import orjson
import pytest

from domain.commands import fast_uuid5
from domain.desk import TicketDesk
from domain.events import Deadline, DomainEvent
from domain.frozen import Frozen
from domain.persistence import stored_as_json
from tests.golden_corpus import Corpus
from tests.unit.builders import shipped_book


@pytest.fixture(scope="module")
def decided_events() -> list[DomainEvent]:
    desk = TicketDesk(shipped_book())
    return [event for command in Corpus().commands() for event in desk.handle(command).events]


def test_every_decided_event_equals_its_validated_copy(decided_events):
    assert len(decided_events) > 1500
    for event in decided_events:
        validated = type(event).model_validate(event.model_dump())
        assert event == validated
        assert list(event.__dict__) == list(type(event).model_fields)
        deadlines = getattr(event, "deadlines", ())
        assert all(type(d) is Deadline and list(d.__dict__) == list(Deadline.model_fields) for d in deadlines)


def test_the_stored_form_is_the_json_of_the_validated_event(decided_events):
    mapper = stored_as_json()
    for event in decided_events:
        validated = type(event).model_validate(event.model_dump())
        assert mapper.to_stored_event(event).state == orjson.dumps(validated.model_dump(mode="json"))
        assert mapper.to_domain_event(mapper.to_stored_event(event)) == event


@pytest.mark.parametrize("index", [0, 1, 7, 12345])
def test_fast_uuid5_is_uuid5(index):
    for _ in range(200):
        namespace, stream = uuid4(), uuid4()
        name = f"{stream}:{index}"
        made = fast_uuid5(namespace, name)
        assert made == uuid5(namespace, name)
        assert (str(made), made.version, made.variant, hash(made)) == (
            str(uuid5(namespace, name)), 5, "specified in RFC 4122", hash(uuid5(namespace, name)),
        )  # fmt: skip


class _Sample(Frozen):
    ident: UUID
    at: datetime
    note: str | None = None


def test_trusted_fills_defaults_in_field_order_and_refuses_unknown_or_missing_fields():
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    ident = uuid4()

    built = _Sample.trusted(at=at, ident=ident)

    assert built == _Sample(ident=ident, at=at)
    assert built.model_dump_json() == _Sample(ident=ident, at=at).model_dump_json()
    with pytest.raises(TypeError, match="no field"):
        _Sample.trusted(ident=ident, at=at, colour="red")
    with pytest.raises(TypeError, match="needs"):
        _Sample.trusted(ident=ident)
    with pytest.raises(Exception, match="frozen"):
        built.note = "changed"  # type: ignore[misc]
