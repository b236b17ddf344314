"""Money and months for billing: whole-cent Decimal amounts and the calendar month a statement covers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BeforeValidator, Field, GetCoreSchemaHandler, PlainSerializer
from pydantic_core import CoreSchema, core_schema

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def _refuse_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("money is a Decimal or a string, never a float")
    return value


def _whole_cents(value: Decimal) -> Decimal:
    if value != value.quantize(CENT):
        raise ValueError(f"{value} is not a whole number of cents")
    return value.quantize(CENT)


# Signed: adjustments and a net total carrying a credit can be negative. Dumps to JSON as "99.99".
Cents = Annotated[
    Decimal,
    BeforeValidator(_refuse_float),
    AfterValidator(_whole_cents),
    PlainSerializer(str, return_type=str, when_used="json"),
]
# A price or a fee in the policy: whole cents, never below zero.
Price = Annotated[Cents, Field(ge=0)]
_MONTH_TEXT = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month, written "2026-03"; the zone decides which instants belong to it."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not (1 <= self.month <= 12 and 1 <= self.year <= 9998):
            raise ValueError(f"no such month: {self.year}-{self.month}")

    @classmethod
    def parse(cls, text: str) -> Month:
        match = _MONTH_TEXT.fullmatch(text)
        if match is None:
            raise ValueError(f"expected a month like '2026-03', got {text!r}")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of(cls, at: datetime, zone: ZoneInfo) -> Month:
        """The month of `zone`'s calendar that the instant `at` falls in."""
        if at.tzinfo is None:
            raise ValueError(f"{at.isoformat()} has no time zone; its month is ambiguous")
        local = at.astimezone(zone)
        return cls(local.year, local.month)

    def first_instant(self, zone: ZoneInfo) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=zone)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        from_text = core_schema.no_info_after_validator_function(
            cls.parse, core_schema.str_schema(pattern=r"^\d{4}-\d{2}$")
        )
        return core_schema.json_or_python_schema(
            json_schema=from_text,
            python_schema=core_schema.union_schema([core_schema.is_instance_schema(cls), from_text]),
            serialization=core_schema.to_string_ser_schema(),
        )
