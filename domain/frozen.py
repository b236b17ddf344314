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
        # The serializer writes fields in the order the instance holds them: the stored JSON must not change.
        state = values if tuple(values) == names else _in_order(cls, values, names, defaults)
        model = cls.__new__(cls)
        _set(model, "__dict__", state)
        _set(model, "__pydantic_fields_set__", set(state))
        _set(model, "__pydantic_extra__", None)
        _set(model, "__pydantic_private__", None)
        return model


def _in_order(cls: type, values: dict[str, Any], names: tuple[str, ...], defaults: dict[str, Any]) -> dict[str, Any]:
    """The values in the fields' declared order, defaults filled in; unknown or missing fields are refused."""
    unknown = values.keys() - set(names)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {sorted(unknown)}")
    merged = {**defaults, **values}
    missing = [name for name in names if name not in merged]
    if missing:
        raise TypeError(f"{cls.__name__} needs {missing}")
    return {name: merged[name] for name in names}


# Per class: its field names in declared order, and the plain defaults of those that have one.
_layouts: dict[type, tuple[tuple[str, ...], dict[str, Any]]] = {}


def _layout(cls: type[Frozen]) -> tuple[tuple[str, ...], dict[str, Any]]:
    known = _layouts.get(cls)
    if known is None:
        fields = cls.model_fields
        defaults = {name: f.default for name, f in fields.items() if f.default is not PydanticUndefined}
        known = _layouts[cls] = (tuple(fields), defaults)
    return known
