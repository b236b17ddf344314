"""How pydantic events are stored: dumped to JSON-ready dicts, encoded with orjson, rebuilt by class."""

from __future__ import annotations

from typing import Any, cast

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic, resolve_topic
from pydantic import BaseModel


class PydanticMapper(Mapper):
    """Stores an event as the JSON of its pydantic model, so the relay can forward it unchanged."""

    def to_stored_event(self, domain_event: DomainEventProtocol) -> StoredEvent:
        # The model's own JSON serializer: the same bytes as orjson over model_dump(mode="json"), in one step.
        state = cast(BaseModel, domain_event).__pydantic_serializer__.to_json(domain_event)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=get_topic(type(domain_event)),
            state=state,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol:
        event_type = resolve_topic(stored_event.topic)
        return event_type.model_validate(self.transcoder.decode(stored_event.state))


class OrjsonTranscoder(Transcoder):
    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def decode(self, data: bytes) -> Any:
        return orjson.loads(data)


def stored_as_json() -> PydanticMapper:
    """The one way events are stored: plain orjson, never compressed or enciphered, so the relay forwards the
    stored bytes as the contract's JSON."""
    return PydanticMapper(transcoder=OrjsonTranscoder())
