"""One formatter for pydantic validation errors: commands, events, alerts, the policy and the settings use it."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from domain.validation import validation_problems


class Inner(BaseModel):
    count: int


class Sample(BaseModel):
    name: str
    inner: Inner

    @field_validator("name")
    @classmethod
    def _short(cls, value: str) -> str:
        if len(value) > 3:
            raise ValueError("at most 3 characters")
        return value


def error_of(data) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        Sample.model_validate_json(data) if isinstance(data, bytes) else Sample.model_validate(data)
    return raised.value


def test_every_problem_on_one_line_where_first_without_pydantics_value_error_prefix():
    error = error_of({"name": "toolong", "inner": {"count": "x"}})
    assert validation_problems(error) == (
        "name: at most 3 characters; inner.count: Input should be a valid integer, unable to parse string as an integer"
    )


def test_the_first_problem_only_and_json_as_the_place_of_text_that_is_no_json():
    assert validation_problems(error_of({"name": "toolong", "inner": {}}), first_only=True).startswith("name: ")
    assert validation_problems(error_of(b"{not json")).startswith("json: Invalid JSON")


def test_a_caller_names_the_places_its_own_way_and_an_empty_name_leaves_the_message_alone():
    error = error_of({"name": "toolong", "inner": {"count": 1}})
    assert validation_problems(error, where=lambda loc: "NETTASK_" + "_".join(map(str, loc)).upper()) == (
        "NETTASK_NAME: at most 3 characters"
    )
    assert validation_problems(error, where=lambda loc: "") == "at most 3 characters"
