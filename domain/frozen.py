"""The domain's one pydantic base model: frozen, no unknown fields, and a fast path for values already checked."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticUndefined

_set = object.__setattr__


class Frozen(BaseModel):
    """An immutable value of the domain; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def trusted(cls, **values: Any) -> Self:
        """An instance from values of the declared types that were validated already (commands at the edge,
        states built from validated events), without validating them again: deciding builds an event per
        command, and validation would cost several times the rest of its construction. Fields left out take
        their defaults."""
        names, defaults = _layout(cls)
        if not values.keys() <= names.keys():
            raise TypeError(f"{cls.__name__} has no field {sorted(values.keys() - names.keys())}")
        # In the fields' declared order: the serializer writes them in the order the instance holds them.
        state = {name: values[name] if name in values else defaults[name] for name in names}
        model = cls.__new__(cls)
        _set(model, "__dict__", state)
        _set(model, "__pydantic_fields_set__", set(state))
        _set(model, "__pydantic_extra__", None)
        _set(model, "__pydantic_private__", None)
        return model


# Per class: its field names in declared order, and the plain defaults of those that have one.
_layouts: dict[type, tuple[dict[str, None], dict[str, Any]]] = {}


def _layout(cls: type[Frozen]) -> tuple[dict[str, None], dict[str, Any]]:
    known = _layouts.get(cls)
    if known is None:
        fields = cls.model_fields
        names = dict.fromkeys(fields)
        defaults = {name: f.default for name, f in fields.items() if f.default is not PydanticUndefined}
        known = _layouts[cls] = (names, defaults)
    return known
